import type { CheckSummary, CiStatus, GhStatusCheck } from '../protocol/github.js';
import { ZERO_TIME } from './zero-time.js';

// The desktop's HEAD rules: reduce to the latest attempt per check, then
// any failure → FAILURE; else anything still going → PENDING; else all passed → SUCCESS; else UNKNOWN.
const FAILED = new Set(['FAILURE', 'ERROR', 'ACTION_REQUIRED', 'TIMED_OUT', 'CANCELLED', 'STARTUP_FAILURE']);
const GOING = new Set(['PENDING', 'EXPECTED', 'QUEUED', 'IN_PROGRESS', 'WAITING', 'REQUESTED']);
const PASSED = new Set(['SUCCESS', 'SKIPPED', 'NEUTRAL']);

/** The check's result: its conclusion once completed, otherwise its (status context) state or run status. */
export function effectiveResult(check: GhStatusCheck): string {
  const status = (check.status ?? '').toUpperCase();
  const conclusion = (check.conclusion ?? '').toUpperCase();
  if (status === 'COMPLETED' && conclusion !== '') return conclusion;
  const state = (check.state ?? '').toUpperCase();
  if (state !== '') return state;
  return status === '' ? 'UNKNOWN' : status;
}

/** GitHub Actions run id from a details URL (`…/actions/runs/<id>/job/<job>`). */
export function actionsRunId(url: string | null | undefined): string | null {
  if (!url) return null;
  return /\/actions\/runs\/(\d+)/.exec(url)?.[1] ?? null;
}

function checkName(check: GhStatusCheck): string {
  return check.name ?? check.context ?? '(unnamed check)';
}

function startedMs(check: GhStatusCheck): number {
  const at = check.startedAt;
  if (!at || ZERO_TIME.test(at)) return Number.NEGATIVE_INFINITY;
  const ms = Date.parse(at);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

/**
 * One entry per `workflowName|name`: a re-run of a check replaces its earlier attempt (latest start wins;
 * on a tie the later entry in gh's list wins), so a fixed-and-rerun job no longer counts as failing.
 */
export function latestAttempts(rollup: readonly GhStatusCheck[]): GhStatusCheck[] {
  const latest = new Map<string, GhStatusCheck>();
  for (const check of rollup) {
    const key = `${check.workflowName ?? ''}|${checkName(check)}`;
    const seen = latest.get(key);
    if (seen === undefined || startedMs(check) >= startedMs(seen)) latest.set(key, check);
  }
  return [...latest.values()];
}

export function summarizeChecks(rollup: readonly GhStatusCheck[] | null | undefined): CheckSummary[] {
  return latestAttempts(rollup ?? []).map((check) => {
    const result = effectiveResult(check);
    const detailsUrl = check.detailsUrl || check.targetUrl || null;
    return {
      name: checkName(check),
      workflowName: check.workflowName || null,
      result,
      detailsUrl,
      runId: actionsRunId(detailsUrl),
      failed: FAILED.has(result),
    };
  });
}

/** CI status of a PR's head commit. No rollup at all is UNKNOWN; a PR without checks is SUCCESS. */
export function computeCiStatus(rollup: readonly GhStatusCheck[] | null | undefined): CiStatus {
  if (rollup === null || rollup === undefined) return 'UNKNOWN';
  const results = latestAttempts(rollup).map(effectiveResult);
  if (results.some((r) => FAILED.has(r))) return 'FAILURE';
  if (results.some((r) => GOING.has(r))) return 'PENDING';
  if (results.every((r) => PASSED.has(r))) return 'SUCCESS';
  return 'UNKNOWN';
}
