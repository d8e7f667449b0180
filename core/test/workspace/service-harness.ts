// A WorkspaceService over a git sandbox: its own repos/worktrees roots per "machine", a counting id source
// and a clock that moves one second per reading.
import { join } from 'node:path';
import type { WorkspaceLocation } from '../../src/protocol/workspace.js';
import {
  createGitRunner,
  InMemoryWorkspaceStore,
  type WorkspaceGitHubBridge,
  WorkspaceService,
  type WorkspaceStore,
} from '../../src/workspace/index.js';
import type { GitSandbox } from '../support/git-sandbox.js';

export interface ServiceHarness {
  service: WorkspaceService;
  store: WorkspaceStore;
  reposRoot: string;
  worktreesRoot: string;
  /** Workspace ids with a "running fixer". */
  activeFixers: Set<string>;
}

let ids = 0;

export function makeService(
  sandbox: GitSandbox,
  machine: string,
  options: {
    location?: WorkspaceLocation;
    github?: WorkspaceGitHubBridge;
    store?: WorkspaceStore;
    setupTimeoutMs?: number;
  } = {},
): ServiceHarness {
  let tick = Date.parse('2024-03-01T00:00:00Z');
  const clock = () => {
    tick += 1000;
    return new Date(tick);
  };
  const store = options.store ?? new InMemoryWorkspaceStore(clock);
  const reposRoot = join(sandbox.dir, machine, 'repos');
  const worktreesRoot = join(sandbox.dir, machine, 'worktrees');
  const activeFixers = new Set<string>();
  const service = new WorkspaceService({
    store,
    git: createGitRunner({ env: sandbox.env }),
    ...(options.github ? { github: options.github } : {}),
    reposRoot,
    worktreesRoot,
    location: options.location ?? 'CLOUD',
    clock,
    newId: () => `ws${++ids}`,
    allowedUrlSchemes: ['file', 'https', 'ssh'],
    setup: { timeoutMs: options.setupTimeoutMs ?? 60_000, env: sandbox.env },
    fixerActivity: { isFixerActive: (id) => activeFixers.has(id) },
  });
  return { service, store, reposRoot, worktreesRoot, activeFixers };
}
