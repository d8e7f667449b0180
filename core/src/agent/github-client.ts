import type * as GitHubModule from '../github/index.js';
import type { AgentConfig } from './config.js';
import { loadModule } from './load-module.js';

/**
 * core/github's client over the VM's gh (the child environment: the VM user's HOME and gh config), made on
 * the first call: an idle VM should not hold the domain's code until something asks GitHub. One client
 * serves the whole agent, so its login cache and rate-limit pause are shared by every caller.
 */
export function lazyGitHubClient(
  config: Pick<AgentConfig, 'ghBin' | 'childEnv'>,
): () => Promise<GitHubModule.GitHubClient> {
  let client: Promise<GitHubModule.GitHubClient> | null = null;
  return () => {
    client ??= loadModule<typeof GitHubModule>('../github/index.js').then(
      ({ GitHubClient, createGhRunner }) =>
        new GitHubClient({ runner: createGhRunner({ ghPath: config.ghBin, env: config.childEnv }) }),
    );
    return client;
  };
}
