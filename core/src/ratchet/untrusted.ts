// Text written by other people goes into a prompt as data, never as instructions. Whole values are
// encoded by protocol/untrusted.ts; this keeps short strings safe on one line of prose.
export { untrustedJson } from '../protocol/untrusted.js';

/** A short untrusted string on one line of prose: no control characters, no backticks, capped. */
export function inlineText(text: string, maxLength = 200): string {
  const flat = text.replace(/[\p{Cc}\u2028\u2029`]/gu, ' ').trim();
  return flat.length > maxLength ? `${flat.slice(0, maxLength - 1)}…` : flat;
}
