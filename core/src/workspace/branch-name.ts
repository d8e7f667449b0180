// Branch names the product creates: `[a-z0-9-/]` only, capped, with `-2`, `-3`… on collision. Names of
// existing branches the user resumes are only validated (they are whatever the user pushed).

export const MAX_BRANCH_SLUG_LENGTH = 50;
export const MAX_BRANCH_NAME_LENGTH = 100;

/** Lower-case, `[a-z0-9-]`, dashes collapsed and trimmed, at most `max` characters. */
export function slugify(text: string, max = MAX_BRANCH_SLUG_LENGTH): string {
  const slug = text
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, max).replace(/-+$/g, '');
}

/**
 * `<user>/<slug of name>`, or just the slug without a user. `fallbackSeed` (e.g. the workspace id) names the
 * branch when nothing of the name survives sanitising, so the result is never empty and never random.
 */
export function branchNameFor(user: string | null, name: string, fallbackSeed: string): string {
  const slug = slugify(name) || `ws-${slugify(fallbackSeed, 12) || 'workspace'}`;
  const prefix = user === null ? '' : slugify(user, 39);
  return prefix === '' ? slug : `${prefix}/${slug}`;
}

/** The n-th candidate for a base name: n=1 is the name itself, then `<name>-2`, `<name>-3`… within the cap. */
export function branchCandidate(base: string, n: number): string {
  if (n <= 1) return base.slice(0, MAX_BRANCH_NAME_LENGTH);
  const suffix = `-${n}`;
  return `${base.slice(0, MAX_BRANCH_NAME_LENGTH - suffix.length).replace(/[-/]+$/g, '')}${suffix}`;
}

/**
 * Whether a user-supplied existing branch name is safe to hand to git: git's check-ref-format rules plus
 * no leading dash (so it can never be read as an option).
 */
export function isValidExistingBranchName(name: string): boolean {
  if (name.length === 0 || name.length > 255) return false;
  if (name.startsWith('-') || name.startsWith('/') || name.endsWith('/') || name.endsWith('.')) return false;
  if (name === '@' || name.includes('..') || name.includes('//') || name.includes('@{')) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is rejected
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)) return false;
  return name.split('/').every((part) => part.length > 0 && !part.startsWith('.') && !part.endsWith('.lock'));
}
