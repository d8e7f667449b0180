import { readdirSync, readFileSync } from 'node:fs';

/**
 * Process groups of the children we start detached (the Claude CLI, setup scripts): one place that
 * signals them and reads what the kernel says about them, shared by every domain that starts one.
 */

/** Signals every process of group `pgid`. False when the group no longer exists (ESRCH). */
export function killProcessGroup(pgid: number, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** What /proc/<pid>/stat says about one process: its group and its start time (clock ticks since boot). */
export interface ProcStat {
  pid: number;
  /** One letter: R, S, D, Z (a zombie: dead, waiting to be reaped), ... */
  state: string;
  pgid: number;
  startTime: string;
}

/** Reads /proc/<pid>/stat; null when the process is gone or there is no /proc (macOS). */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces or ')': fields resume after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name: state(3) ppid(4) pgrp(5) ... starttime(22), so index 0 is field 3.
  const state = fields[0] ?? '';
  const pgid = Number(fields[2]);
  const startTime = fields[19];
  if (!Number.isInteger(pgid) || startTime === undefined || !/^\d+$/.test(startTime)) return null;
  return { pid, state, pgid, startTime };
}

/** Every live process in group `pgid` (an empty list without /proc). */
export function processesInGroup(pgid: number): ProcStat[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const members: ProcStat[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(Number(entry));
    if (stat && stat.pgid === pgid) members.push(stat);
  }
  return members;
}

/**
 * Whether group `pgid` is still the one whose leader started at `leaderStartTime`, so that killing it
 * kills only what we started: the leader is alive with that start time, or the leader is gone and the
 * group lives on in processes started no earlier than it (a pid that is some group's id is never handed
 * out again while the group exists, so no other group can carry this id then).
 */
export function isSameProcessGroup(pgid: number, leaderStartTime: string): boolean {
  const leader = readProcStat(pgid);
  if (leader) return leader.pgid === pgid && leader.startTime === leaderStartTime;
  const start = BigInt(leaderStartTime);
  const members = processesInGroup(pgid);
  return members.length > 0 && members.every((member) => BigInt(member.startTime) >= start);
}

/** The kinds of detached children the agent records. */
export type ProcessGroupKind = 'claude' | 'setup_script';

/**
 * Told of each detached child's process group when it starts and once it is gone, so that after a
 * crash of their owner (whose children live on in their own groups) the next start can end them.
 */
export interface ProcessGroupRecorder {
  started(pgid: number, kind: ProcessGroupKind): void;
  ended(pgid: number): void;
}
