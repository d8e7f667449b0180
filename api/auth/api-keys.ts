/**
 * API keys for the desktop app and `ffc`. The format is made to be found by secret scanners:
 *
 *     ffc_live_<id>_<secret>       id: 16, secret: 40 characters of [0-9A-Za-z]
 *     scanner regex: \bffc_live_[0-9A-Za-z]{16}_[0-9A-Za-z]{40}\b
 *
 * `ffc_live_<id>` is the key's prefix: shown in lists and enough to find the key (api_keys.prefix) when a
 * scanner reports a leak. The secret is 40 base62 characters from the CSPRNG (~238 bits), so one SHA-256
 * of the whole key is a sufficient hash (no slow KDF is needed for a key nobody can guess), compared in
 * constant time. The key is shown once, when it is created; only the hash is stored.
 *
 * Every use reads the key's row, so a revoked key is refused on the very next request (no cache).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { findKeyForAuth, recordKeyUse } from '../../db/api-keys.js';
import { recordAudit } from '../../db/audit.js';
import type { Pool } from '../../db/pool.js';
import type { Logger } from '../../platform/logger.js';
import { ApiError } from '../errors.js';
import type { Authenticator } from './principal.js';

export const API_KEY_PREFIX = 'ffc_live_';
const ID_LENGTH = 16;
const SECRET_LENGTH = 40;

/** What a secret scanner looks for (documented in the README's Accounts section). */
export const API_KEY_PATTERN = /\bffc_live_[0-9A-Za-z]{16}_[0-9A-Za-z]{40}\b/;
const EXACT = /^ffc_live_([0-9A-Za-z]{16})_([0-9A-Za-z]{40})$/;

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Uniform base62 characters: bytes of 248 and up are dropped, so no character is likelier than another. */
function base62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte >= 248) continue;
      out += ALPHABET[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export const hashApiKey = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

export type NewApiKey = { id: string; prefix: string; key: string; secretHash: Buffer };

export function generateApiKey(): NewApiKey {
  const id = base62(ID_LENGTH);
  const prefix = `${API_KEY_PREFIX}${id}`;
  const key = `${prefix}_${base62(SECRET_LENGTH)}`;
  return { id, prefix, key, secretHash: hashApiKey(key) };
}

/** Whether a credential is an API key by its shape (the authenticator chain dispatches on it). */
export const looksLikeApiKey = (credential: string): boolean => credential.startsWith(API_KEY_PREFIX);

/** The key's id, or null when the credential is not a well-formed key. */
export function apiKeyIdOf(credential: string): string | null {
  return EXACT.exec(credential)?.[1] ?? null;
}

const invalidKey = () =>
  new ApiError(401, 'invalid_api_key', 'the API key is not valid: create a new one with POST /api/keys');

export function createApiKeyAuthenticator(options: {
  pool: Pool;
  log: Logger;
  /** last_used_at is written at most this often per key (default 60 s). */
  lastUsedThrottleSeconds?: number;
}): Authenticator {
  const throttleSeconds = options.lastUsedThrottleSeconds ?? 60;
  // When this process last wrote each key's last_used_at: most requests then need no write at all.
  const writtenAt = new Map<string, number>();

  async function noteUse(keyId: string, userId: string): Promise<void> {
    const now = Date.now();
    const last = writtenAt.get(keyId);
    if (last !== undefined && now - last < throttleSeconds * 1000) return;
    if (writtenAt.size > 10_000) writtenAt.clear();
    writtenAt.set(keyId, now);
    const use = await recordKeyUse(options.pool, keyId, throttleSeconds);
    if (use.firstUse) {
      await recordAudit(options.pool, {
        userId,
        actor: `api-key:${keyId}`,
        action: 'key.first_use',
        targetType: 'api_key',
        targetId: keyId,
      });
    }
  }

  return {
    async authenticate(credential) {
      if (!looksLikeApiKey(credential)) return null;
      const id = apiKeyIdOf(credential);
      if (!id) throw invalidKey();
      const stored = await findKeyForAuth(options.pool, id);
      // Hash and compare even when there is no such key, so the answer takes as long either way.
      const presented = hashApiKey(credential);
      const expected = stored?.secretHash.length === presented.length ? stored.secretHash : Buffer.alloc(32);
      const matches = timingSafeEqual(presented, expected) && stored !== null;
      if (!stored || !matches) throw invalidKey();
      if (stored.revoked) {
        throw new ApiError(401, 'api_key_revoked', 'this API key has been revoked: create a new one');
      }
      await noteUse(stored.id, stored.userId).catch((err: unknown) => {
        // Bookkeeping only: a failed write must not refuse a valid key.
        writtenAt.delete(stored.id);
        options.log.warn({ err, keyId: stored.id }, 'could not record API key use');
      });
      return { userId: stored.userId, via: 'api-key', keyId: stored.id };
    },
  };
}
