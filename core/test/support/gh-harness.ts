// The real gh (Debian's /usr/bin/gh) wired to a fresh fake GitHub, with a hand-driven clock.
import { createGhRunner, GitHubClient } from '../../src/github/index.js';
import { type FakeGitHub, type FakeGitHubFixturesInput, startFakeGitHub } from './fake-github.js';

export const GH_BINARY = '/usr/bin/gh';

export interface GhHarness {
  fake: FakeGitHub;
  client: GitHubClient;
  clock: { now: number };
  /** A client using other gh credentials (e.g. a wrong or missing token) against the same fake. */
  clientWith(token: string | null): GitHubClient;
  close(): Promise<void>;
}

export async function startGhHarness(fixtures: FakeGitHubFixturesInput = {}): Promise<GhHarness> {
  const fake = await startFakeGitHub({ fixtures });
  const clock = { now: Date.parse('2024-01-10T00:00:00Z') };
  const clientWith = (token: string | null) =>
    new GitHubClient({
      runner: createGhRunner({ ghPath: GH_BINARY, env: fake.ghEnv({ token }), timeoutMs: 30_000 }),
      now: () => clock.now,
    });
  return {
    fake,
    clock,
    client: clientWith(fake.fixtures().token),
    clientWith,
    close: () => fake.close(),
  };
}
