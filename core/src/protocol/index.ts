// zod schemas of every message that crosses a process boundary, and the one checked JSON parser.
export * from './json.js';
