/**
 * How the workflow bundle is built: from workflows/index.ts, reading core's TypeScript sources through the
 * `source` export condition (the same sources tsx and tsc read), so there is no separate build of core.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BundleOptions } from '@temporalio/worker';

export const workflowsPath = resolve(dirname(fileURLToPath(import.meta.url)), '../workflows/index.ts');

export const workflowBundlerOptions: NonNullable<BundleOptions['webpackConfigHook']> = (config) => {
  config.resolve = { ...config.resolve, conditionNames: ['source', 'import', 'require', 'default'] };
  return config;
};
