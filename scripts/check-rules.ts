/**
 * Architecture rules that Biome and tsc cannot express. Run by `npm run lint` (part of the test command).
 *
 * - Untrusted JSON is parsed only by core's safeParseJson (and the dashboard's one parser).
 * - core/ imports nothing outside core/; its domains talk through bridges, never by importing each other.
 * - The ratchet domain and workflows/ stay deterministic: no clock, no randomness, no I/O. Workflows read
 *   Temporal's replay-safe clock through workflows/clock.ts only.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const skipDirs = new Set(['node_modules', 'dist', '.data', '.git']);

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (skipDirs.has(name)) continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) walk(full, out);
    else if (/\.(ts|vue)$/.test(name) && !name.endsWith('.d.ts')) out.push(full);
  }
  return out;
}

type Import = { spec: string; typeOnly: boolean; line: number };
const importRe = /^\s*(import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
const dynamicImportRe = /import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(text: string): Import[] {
  const found: Import[] = [];
  for (const m of text.matchAll(importRe)) {
    const line = text.slice(0, m.index).split('\n').length;
    found.push({ spec: m[3] ?? '', typeOnly: Boolean(m[2]), line });
  }
  for (const m of text.matchAll(dynamicImportRe)) {
    const line = text.slice(0, m.index).split('\n').length;
    found.push({ spec: m[1] ?? '', typeOnly: false, line });
  }
  return found;
}

const coreDomains = ['session', 'terminal', 'workspace', 'github', 'ratchet', 'protocol', 'agent'];
const jsonParseAllowed = new Set([
  'core/src/protocol/json.ts',
  'web/src/lib/json.ts',
  'scripts/check-rules.ts',
]);
const problems: string[] = [];
const report = (file: string, line: number, msg: string) => problems.push(`${file}:${line}: ${msg}`);

for (const abs of walk(root)) {
  const file = relative(root, abs);
  const text = readFileSync(abs, 'utf8');
  const isTest = /(^|\/)test\//.test(file) || file.startsWith('bench/');

  if (!isTest && !jsonParseAllowed.has(file)) {
    const idx = text.indexOf('JSON.parse(');
    if (idx >= 0) {
      report(
        file,
        text.slice(0, idx).split('\n').length,
        'use safeParseJson/parseJson (zod-checked) instead of JSON.parse',
      );
    }
  }

  if (file.startsWith('core/')) {
    for (const imp of importsOf(text)) {
      if (imp.spec.startsWith('.')) {
        const target = relative(root, resolve(dirname(abs), imp.spec));
        if (!target.startsWith('core/'))
          report(file, imp.line, `core must not import outside core/: ${imp.spec}`);
        const from = file.match(/^core\/src\/([^/]+)\//)?.[1];
        const to = target.match(/^core\/src\/([^/]+)\//)?.[1];
        if (
          from &&
          to &&
          from !== to &&
          coreDomains.includes(from) &&
          from !== 'agent' &&
          to !== 'protocol'
        ) {
          report(
            file,
            imp.line,
            `domain '${from}' must not import domain '${to}'; declare a bridge interface instead`,
          );
        }
      } else if (/^@factory-factory\/(?!core)/.test(imp.spec) || imp.spec.startsWith('@temporalio/')) {
        report(file, imp.line, `core must not depend on the cloud: ${imp.spec}`);
      }
    }
  }

  const deterministic = file.startsWith('core/src/ratchet/') || (file.startsWith('workflows/') && !isTest);
  if (deterministic) {
    for (const [re, what] of [
      [/\bDate\.now\(/, 'Date.now()'],
      [/\bnew Date\(\)/, 'new Date() without an argument'],
      [/\bMath\.random\(/, 'Math.random()'],
      [/\bsetTimeout\(|\bsetInterval\(/, 'timers (use workflow sleep/condition)'],
    ] as const) {
      const m = text.match(re);
      if (m?.index !== undefined && file !== 'workflows/clock.ts') {
        report(file, text.slice(0, m.index).split('\n').length, `deterministic module uses ${what}`);
      }
    }
    for (const imp of importsOf(text)) {
      if (imp.typeOnly) continue;
      const ok =
        imp.spec.startsWith('.') ||
        imp.spec === '@temporalio/workflow' ||
        imp.spec === '@temporalio/common' ||
        imp.spec === 'zod' ||
        imp.spec === '@factory-factory/core/ratchet' ||
        imp.spec === '@factory-factory/core/protocol';
      if (!ok) report(file, imp.line, `deterministic module imports '${imp.spec}'`);
      if (imp.spec.startsWith('.') && file.startsWith('workflows/')) {
        const target = relative(root, resolve(dirname(abs), imp.spec));
        if (!target.startsWith('workflows/'))
          report(file, imp.line, `workflows may import only workflows/: ${imp.spec}`);
      }
    }
  }
}

/**
 * The cloud's layers (docs/CONVENTIONS.md, "Layout"): which folders a folder may import from, as relative
 * imports and as @factory-factory/core subpaths. `messages` means workflows' message definitions and ids
 * (workflows/ids.ts, workflows/<actor>/messages.ts): the contract between actors and their callers, which
 * the lower layers may name without importing any workflow code. Type-only imports are not checked.
 */
type Layer = { folders: string[]; core: string[]; messages: boolean };
const cloudLayers: Record<string, Layer> = {
  platform: { folders: ['platform'], core: ['protocol', 'agent-client'], messages: true },
  db: { folders: ['db', 'platform'], core: ['protocol'], messages: true },
  activities: {
    folders: ['activities', 'db', 'platform'],
    core: ['protocol', 'agent-client', 'workspace', 'ratchet', 'github'],
    messages: true,
  },
  api: {
    folders: ['api', 'db', 'platform', 'workflows'],
    core: ['protocol', 'agent-client', 'workspace'],
    messages: true,
  },
  cli: {
    folders: ['cli', 'api/contract'],
    core: ['protocol', 'ratchet', 'github', 'session'],
    messages: false,
  },
  web: { folders: ['web'], core: [], messages: false },
};
const isMessages = (target: string) =>
  target === 'workflows/ids.ts' ||
  /^workflows\/[a-z-]+\/messages\.ts$/.test(target) ||
  /^workflows\/reconciler\/plan\.ts$/.test(target) ||
  target === 'workflows/usage/plans.ts';

for (const abs of walk(root)) {
  const file = relative(root, abs);
  const top = file.split('/')[0] ?? '';
  const layer = file.startsWith('api/contract/')
    ? { folders: ['api/contract'], core: ['protocol'], messages: true }
    : cloudLayers[top];
  if (!layer) continue;
  const text = readFileSync(abs, 'utf8');
  for (const imp of importsOf(text)) {
    if (imp.typeOnly) continue;
    if (imp.spec.startsWith('.')) {
      const target = relative(root, resolve(dirname(abs), imp.spec)).replace(/\.js$/, '.ts');
      const allowed =
        layer.folders.some((folder) => target === folder || target.startsWith(`${folder}/`)) ||
        (layer.messages && isMessages(target));
      if (!allowed)
        report(file, imp.line, `${top}/ must not import ${target} (see docs/CONVENTIONS.md, Layout)`);
    } else if (imp.spec.startsWith('@factory-factory/core')) {
      const sub = imp.spec.split('/')[2] ?? '(root)';
      if (!layer.core.includes(sub))
        report(file, imp.line, `${top}/ must not import ${imp.spec} (see docs/CONVENTIONS.md, Layout)`);
    }
  }
}

if (problems.length > 0) {
  console.error(`Architecture rules: ${problems.length} problem(s)\n${problems.join('\n')}`);
  process.exit(1);
}
console.log('Architecture rules: ok');
