/**
 * Development authentication: one fixed key (DEV_API_KEY) stands for one user (DEV_USER_ID). Compared in
 * constant time over digests, so neither the key's content nor its length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator } from './principal.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

export function createDevKeyAuthenticator(options: { key: string; userId: string }): Authenticator {
  const expected = digest(options.key);
  return {
    async authenticate(credential) {
      return timingSafeEqual(digest(credential), expected)
        ? { userId: options.userId, via: 'dev-key' }
        : null;
    },
  };
}
