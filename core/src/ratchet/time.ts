// ISO timestamps compared as instants. Date.parse is a pure function of its argument (no clock read).

export function isoToMs(iso: string | null): number | null {
  if (iso === null) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

/** True when `candidate` is a later instant than `reference` (anything beats a missing reference). */
export function isLaterThan(candidate: string | null, reference: string | null): boolean {
  const c = isoToMs(candidate);
  if (c === null) return false;
  const r = isoToMs(reference);
  return r === null || c > r;
}

export function laterOf(a: string | null, b: string | null): string | null {
  return isLaterThan(b, a) ? b : a;
}
