// @factory-factory/core: each domain is exported as a namespace so names never collide across domains.
// Consumers that need one domain import its subpath instead (e.g. '@factory-factory/core/ratchet').
export * as agent from './agent/index.js';
export * as github from './github/index.js';
export * as protocol from './protocol/index.js';
export * as ratchet from './ratchet/index.js';
export * as session from './session/index.js';
export * as terminal from './terminal/index.js';
export * as workspace from './workspace/index.js';
