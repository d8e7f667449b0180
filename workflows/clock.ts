/**
 * The only door to the clock in workflows/. Inside Temporal's workflow sandbox Date.now() returns the
 * time of the current workflow task, recorded in history, so it is identical on replay. Keeping every
 * read here makes that assumption visible and lets scripts/check-rules.ts forbid clocks everywhere else.
 */
export function workflowNow(): number {
  return Date.now();
}
