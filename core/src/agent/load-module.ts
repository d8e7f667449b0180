import { createRequire } from 'node:module';

const requireModule = createRequire(import.meta.url);

/** require() refuses an ES module with top-level await, and before Node 20.19 any ES module. */
const NOT_REQUIRABLE = new Set(['ERR_REQUIRE_ASYNC_MODULE', 'ERR_REQUIRE_ESM']);

/**
 * Loads `specifier` (relative to this folder) synchronously with require() where it can, else with
 * import(). main.ts loads the agent this way because it is faster at start-up; what the agent loads
 * later (a domain on first use) goes the same way, so that it shares the module instances loaded at
 * start. A loader that keeps CommonJS and ES instances apart (tsx, running the source in tests) would
 * otherwise give the late module a second copy of, say, the session errors, and `instanceof` against
 * the first copy would fail.
 */
export async function loadModule<T>(specifier: string): Promise<T> {
  try {
    return requireModule(specifier) as T;
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
    if (typeof code !== 'string' || !NOT_REQUIRABLE.has(code)) throw error;
    return (await import(specifier)) as T;
  }
}
