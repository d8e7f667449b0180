import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { safeParseJson } from '../protocol/index.js';

/**
 * The agent's version is core's package version. The manifest sits two levels up both from
 * src/agent (tests, tsx) and from dist/agent (the compiled agent in the VM image).
 */
export function readAgentVersion(): string {
  try {
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    const parsed = safeParseJson(z.looseObject({ version: z.string() }), text);
    return parsed.ok ? parsed.value.version : '0.0.0-unknown';
  } catch {
    return '0.0.0-unknown';
  }
}
