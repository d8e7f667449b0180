/** The app's dependencies in a browser: same-origin api, the page's WebSocket and sessionStorage. */
import type { AppDeps, StorageLike } from './deps.js';
import { memoryStorage } from './deps.js';
import type { SocketLike } from './socket.js';

function sessionStorageOrMemory(): StorageLike {
  try {
    const storage = window.sessionStorage;
    storage.getItem('ffc.probe');
    return storage;
  } catch {
    return memoryStorage();
  }
}

function cookie(name: string): string | null {
  for (const part of document.cookie.split(';')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

export function browserDeps(): AppDeps {
  return {
    baseUrl: '',
    pageOrigin: window.location.origin,
    fetch: (url, init) => window.fetch(url, init),
    openSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as SocketLike,
    storage: sessionStorageOrMemory(),
    navigateAway: (url) => window.location.assign(url),
    clerkSessionToken: () => cookie('__session'),
  };
}
