/**
 * What the stores and composables need from the outside world, set once by main.ts (the browser's fetch,
 * WebSocket and sessionStorage) or by a unit test (Node's fetch, `ws`, a Map). Kept out of the stores so
 * they stay plain TypeScript that runs under mocha.
 */
import type { FetchLike } from './api-client.js';
import type { SocketFactory } from './socket.js';

export type StorageLike = {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
};

export type AppDeps = {
  /** The api's origin; '' for the page's own. */
  baseUrl: string;
  /** Origin to build ws:// urls from when baseUrl is ''. */
  pageOrigin: string;
  fetch: FetchLike;
  openSocket: SocketFactory;
  storage: StorageLike;
  /** Leaves the app for another page (Stripe Checkout, Clerk's sign-in). */
  navigateAway: (url: string) => void;
  /** Clerk's `__session` cookie when present (clerk mode), else null. */
  clerkSessionToken: () => string | null;
};

let current: AppDeps | null = null;

export function setAppDeps(deps: AppDeps): void {
  current = deps;
}

export function appDeps(): AppDeps {
  if (!current) throw new Error('setAppDeps() was not called before the first store was used');
  return current;
}

/** In-memory storage for tests (and browsers that refuse sessionStorage). */
export function memoryStorage(): StorageLike {
  const map = new Map<string, string>();
  return {
    getItem: (key) => map.get(key) ?? null,
    setItem: (key, value) => void map.set(key, value),
    removeItem: (key) => void map.delete(key),
  };
}
