// Every workflow the worker runs. This file is the entry point of the workflow bundle, so it must import
// only deterministic code (scripts/check-rules.ts checks it).
export { ratchetWorkflow } from './ratchet/workflow.js';
export { reconcileStrayContainers } from './reconciler/workflow.js';
export { usageWorkflow } from './usage/workflow.js';
export { vmWorkflow } from './vm/workflow.js';
export { vmPoolWorkflow } from './vm-pool/workflow.js';
export { workspaceWorkflow } from './workspace/workflow.js';
