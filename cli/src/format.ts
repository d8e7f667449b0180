/** Plain-text output of ffc: tables and the human form of the api's answers. */
import type { PortableWorkspaceState } from '@factory-factory/core/protocol';
import type { z } from 'zod';
import type { WorkspaceViewSchema } from '../../api/contract/workspaces.js';
import type { VmView } from './vm-schema.js';

type WorkspaceView = z.output<typeof WorkspaceViewSchema>;

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}

export function workspaceTable(workspaces: WorkspaceView[]): string {
  if (workspaces.length === 0) return 'no workspaces\n';
  return table(
    ['ID', 'NAME', 'STATUS', 'LOCATION', 'BRANCH', 'PR'],
    workspaces.map((w) => [
      w.id,
      w.name,
      w.status,
      w.location,
      w.branchName ?? '-',
      w.prNumber !== null ? `#${w.prNumber}` : (w.prUrl ?? '-'),
    ]),
  );
}

export function workspaceSummary(w: WorkspaceView): string {
  const lines = [
    `workspace ${w.id}: ${w.name}`,
    `  status    ${w.status}${w.status === 'FAILED' && w.failureReason ? ` (${w.failureReason})` : ''}`,
    `  location  ${w.location}`,
    `  repo      ${w.repoUrl ?? '-'}`,
    `  branch    ${w.branchName ?? '-'}`,
    `  PR        ${w.prUrl ?? '-'}`,
  ];
  return `${lines.join('\n')}\n`;
}

export function portableStateSummary(state: PortableWorkspaceState): string {
  const lines = [
    `workspace ${state.workspaceId}: ${state.name}`,
    `  location        ${state.location}`,
    `  repo            ${state.repoUrl}`,
    `  branch          ${state.branchName}${state.baseBranch ? ` (base ${state.baseBranch})` : ''}`,
    `  PR              ${state.prUrl ?? '-'}`,
    `  issue           ${state.githubIssueUrl ?? '-'}`,
    `  ratchet         ${state.ratchetEnabled ? 'on' : 'off'}, ${state.ratchetState}`,
    `  exported at     ${state.exportedAt}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The logins a VM still needs, each with the command to run in `ffc vm terminal`. */
export function onboardingSteps(vm: VmView): { item: string; done: boolean; command: string }[] {
  return [
    { item: 'GitHub CLI login', done: vm.onboarding.githubCli, command: 'gh auth login' },
    { item: 'Claude login', done: vm.onboarding.claude, command: 'claude (then /login)' },
  ];
}

export function vmSummary(vm: VmView): string {
  const lines = [`VM ${vm.vmId}: ${vm.status}${vm.operation ? ` (${vm.operation} in progress)` : ''}`];
  if (vm.failureReason) lines.push(`  failure: ${vm.failureReason}`);
  if (vm.problem) lines.push(`  problem: ${vm.problem.message}`);
  lines.push(`  last active ${vm.lastActiveAt}`);
  lines.push('Onboarding:');
  const steps = onboardingSteps(vm);
  for (const step of steps) {
    lines.push(
      `  [${step.done ? 'x' : ' '}] ${step.item}${step.done ? '' : `: run \`${step.command}\` in \`ffc vm terminal\``}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
