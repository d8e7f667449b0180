// Text written by other people (issues, review comments, check names) goes into a prompt as data, never as
// instructions: JSON-encoded, with the characters that could close a surrounding tag or a markdown fence
// escaped. The result is still valid JSON that decodes to exactly the original values. Shared by every
// domain that builds a prompt from someone else's words.

export function untrustedJson(value: unknown): string {
  return JSON.stringify(value, null, 2)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/`/g, '\\u0060')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
