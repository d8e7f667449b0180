// zod schemas of every message that crosses a process boundary, and the one checked JSON parser.

export * from './agent.js';
export * from './chat.js';
export * from './claude-cli.js';
export * from './github.js';
export * from './github-urls.js';
export * from './json.js';
export * from './ndjson.js';
export * from './terminal.js';
export * from './untrusted.js';
export * from './workspace.js';
