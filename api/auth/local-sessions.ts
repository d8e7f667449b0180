/**
 * Local sign-in (AUTH_MODE=local, development and tests): the api keeps its own RS256 key pair and issues
 * session JWTs shaped like Clerk's (sub, sid, azp, iat, nbf, exp), which api/auth/session.ts verifies with
 * @clerk/backend exactly as it verifies Clerk's, given this pair's public key instead of Clerk's.
 *
 * The pair lives in config.auth.localKeyDir (mode 0700, files 0600), made on first start. An existing pair
 * is never overwritten: tokens issued before a restart stay valid, and two api processes starting at once
 * end with one pair (the private key is published with link(), which fails if the file exists).
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSign,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCAL_PRIVATE_KEY_FILE = 'local-session-key.pem';
export const LOCAL_PUBLIC_KEY_FILE = 'local-session-key.pub.pem';
/** Clerk's default session lifetime is a minute; a local sign-in lasts an hour (no refresh in local mode). */
export const LOCAL_SESSION_TTL_SECONDS = 60 * 60;

export type LocalKeyPair = { privateKey: KeyObject; publicKeyPem: string; kid: string };

function publicPemOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
}

/** Reads the pair from `dir`, making it first if there is none. Never replaces an existing key. */
export function loadOrCreateLocalKeyPair(dir: string): LocalKeyPair {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const privatePath = join(dir, LOCAL_PRIVATE_KEY_FILE);
  const publicPath = join(dir, LOCAL_PUBLIC_KEY_FILE);
  if (!existsSync(privatePath)) {
    // Clerk's PEM loader (loadClerkJwkFromPem) reads 2048-bit RSA keys with exponent 65537 only.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 });
    const staging = join(dir, `.${LOCAL_PRIVATE_KEY_FILE}.${randomBytes(6).toString('hex')}`);
    writeFileSync(staging, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
    try {
      linkSync(staging, privatePath);
    } catch (err) {
      // Another process published its key first: use that one.
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err;
    } finally {
      unlinkSync(staging);
    }
  }
  const privateKey = createPrivateKey(readFileSync(privatePath));
  if (privateKey.asymmetricKeyType !== 'rsa' || privateKey.asymmetricKeyDetails?.modulusLength !== 2048) {
    throw new Error(`${privatePath} is not a 2048-bit RSA key; move it away to make a new pair`);
  }
  const publicKeyPem = publicPemOf(privateKey);
  if (existsSync(publicPath)) {
    if (readFileSync(publicPath, 'utf8') !== publicKeyPem) {
      throw new Error(`${publicPath} does not belong to ${privatePath}; remove it and it is written again`);
    }
  } else {
    try {
      writeFileSync(publicPath, publicKeyPem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err;
    }
  }
  // Names the key in the token header (a fingerprint of the public key), as Clerk's kid names its key.
  const der = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const kid = `ins_local_${createHash('sha256').update(der).digest('hex').slice(0, 24)}`;
  return { privateKey, publicKeyPem, kid };
}

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

/** An RS256 JWT over `claims` with `key` (also how the tests sign Clerk-like tokens). */
export function signRs256Jwt(claims: Record<string, unknown>, key: KeyObject, kid: string): string {
  const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const payload = b64url(JSON.stringify(claims));
  const signature = createSign('RSA-SHA256').update(`${header}.${payload}`).sign(key);
  return `${header}.${payload}.${b64url(signature)}`;
}

export type LocalSession = { token: string; expiresAt: string; sessionId: string };

export type LocalSessionIssuer = {
  /** What session.ts verifies local tokens with. */
  publicKeyPem: string;
  issue(userId: string): LocalSession;
};

export function createLocalSessionIssuer(
  pair: LocalKeyPair,
  options: { authorizedParty: string; issuer: string; ttlSeconds?: number; now?: () => number },
): LocalSessionIssuer {
  const ttl = options.ttlSeconds ?? LOCAL_SESSION_TTL_SECONDS;
  const now = options.now ?? Date.now;
  return {
    publicKeyPem: pair.publicKeyPem,
    issue(userId) {
      const iat = Math.floor(now() / 1000);
      const sessionId = `sess_local_${randomBytes(12).toString('hex')}`;
      const exp = iat + ttl;
      const token = signRs256Jwt(
        // Clerk backdates nbf a little for clock skew between its servers and the api; so do we.
        {
          sub: userId,
          sid: sessionId,
          azp: options.authorizedParty,
          iss: options.issuer,
          iat,
          nbf: iat - 10,
          exp,
        },
        pair.privateKey,
        pair.kid,
      );
      return { token, expiresAt: new Date(exp * 1000).toISOString(), sessionId };
    },
  };
}
