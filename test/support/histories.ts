/**
 * Recorded workflow histories for replay tests. A test that runs a workflow against the real server can
 * save its history here when FFC_RECORD_HISTORIES=1; test/workflows/replay.test.ts replays every file in
 * test/fixtures/histories with the current workflow code, so a non-deterministic change fails CI.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { temporal } from '@temporalio/proto';

export const historiesDir = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/histories');

export function shouldRecordHistories(): boolean {
  return process.env.FFC_RECORD_HISTORIES === '1';
}

export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  mkdirSync(historiesDir, { recursive: true });
  writeFileSync(join(historiesDir, `${name}.json`), `${historyToJSON(history)}\n`);
}

export function loadHistories(): { name: string; history: temporal.api.history.v1.IHistory }[] {
  return readdirSync(historiesDir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      name: f.replace(/\.json$/, ''),
      // Fixtures are our own files; historyFromJSON validates them against the protobuf schema.
      history: historyFromJSON(JSON.parse(readFileSync(join(historiesDir, f), 'utf8'))),
    }));
}
