// @factory-factory/core: each domain is exported as a namespace so names never collide across domains.
// Consumers that need one domain import its subpath instead (e.g. '@factory-factory/core/ratchet').
//
// The root entry loads no native module: `agent` is left out because its store opens better-sqlite3 at
// import (use '@factory-factory/core/agent', or '@factory-factory/core/agent-client' for the client alone).
// `terminal` is here because it loads node-pty only when the first terminal is created.
export * as github from './github/index.js';
export * as protocol from './protocol/index.js';
export * as ratchet from './ratchet/index.js';
export * as session from './session/index.js';
export * as terminal from './terminal/index.js';
export * as workspace from './workspace/index.js';
