/**
 * A stand-in for a Clerk instance, for tests: an RSA key pair made here (Clerk's instances sign with
 * 2048-bit RS256 keys), its PEM public key as CLERK_JWT_KEY, and session tokens signed with it shaped like
 * Clerk's (header alg/kid/typ; claims azp, exp, iat, iss, nbf, sid, sub). Signing is written out with
 * node:crypto here rather than borrowed from the api, so what the api verifies is made independently.
 *
 * Also Clerk's webhook deliveries: a `whsec_` endpoint secret and svix signatures made with svix's own
 * signer, exactly as Clerk (which sends through svix) makes them.
 */
import { createSign, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { Webhook } from 'svix';

export const TEST_AUTHORIZED_PARTY = 'https://app.ffc.example.test';

export type ClerkClaims = {
  sub: string;
  sid?: string;
  azp?: string;
  iss?: string;
  /** Seconds since the epoch. */
  iat?: number;
  nbf?: number;
  exp?: number;
  [claim: string]: unknown;
};

const b64url = (value: string | Buffer): string => Buffer.from(value).toString('base64url');

export function signJwt(
  claims: Record<string, unknown>,
  key: KeyObject,
  header: Record<string, unknown>,
): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', ...header }));
  const body = b64url(JSON.stringify(claims));
  const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(key);
  return `${head}.${body}.${b64url(signature)}`;
}

export type FakeClerkInstance = {
  /** What the api is given as CLERK_JWT_KEY. */
  publicKeyPem: string;
  /** The instance's private key (tests read it to sign malformed tokens). */
  privateKey: KeyObject;
  kid: string;
  /**
   * A session token for `sub` as Clerk issues one: valid for a minute from now, nbf backdated 10 s, azp the
   * test's authorized party; any claim can be overridden (or removed with undefined).
   */
  sessionToken(sub: string, overrides?: Partial<ClerkClaims>): string;
};

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export function fakeClerkInstance(
  options: { authorizedParty?: string; issuer?: string } = {},
): FakeClerkInstance {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
  });
  const kid = `ins_test_${randomBytes(8).toString('hex')}`;
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKey,
    kid,
    sessionToken(sub, overrides = {}) {
      const iat = nowSeconds();
      const claims: Record<string, unknown> = {
        azp: options.authorizedParty ?? TEST_AUTHORIZED_PARTY,
        exp: iat + 60,
        iat,
        iss: options.issuer ?? 'https://clerk.ffc.example.test',
        nbf: iat - 10,
        sid: `sess_${randomBytes(12).toString('hex')}`,
        sub,
        ...overrides,
      };
      for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
      return signJwt(claims, privateKey, { kid });
    },
  };
}

/** A Clerk webhook endpoint's signing secret, as the Clerk dashboard shows it. */
export const newWebhookSecret = (): string => `whsec_${randomBytes(24).toString('base64')}`;

export type SignedDelivery = { body: string; headers: Record<string, string> };

/**
 * One delivery of `payload` (sent exactly as `body` when given: the signature covers the raw bytes),
 * signed with `secret` by svix, at `timestamp` (now by default), with delivery id `id`.
 */
export function signedDelivery(
  secret: string,
  payload: unknown,
  options: { id?: string; timestamp?: Date; body?: string } = {},
): SignedDelivery {
  const id = options.id ?? `msg_${randomBytes(12).toString('hex')}`;
  const timestamp = options.timestamp ?? new Date();
  const body = options.body ?? JSON.stringify(payload);
  const signature = new Webhook(secret).sign(id, timestamp, body);
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'svix-id': id,
      'svix-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'svix-signature': signature,
    },
  };
}

/** Clerk's user object as its webhooks carry it (the fields the api reads, and a few it ignores). */
export function clerkUser(
  id: string,
  profile: { email?: string; firstName?: string; lastName?: string; updatedAt: number },
): Record<string, unknown> {
  const emailId = `idn_${randomBytes(6).toString('hex')}`;
  return {
    id,
    object: 'user',
    first_name: profile.firstName ?? null,
    last_name: profile.lastName ?? null,
    username: null,
    primary_email_address_id: profile.email ? emailId : null,
    email_addresses: profile.email
      ? [{ id: emailId, object: 'email_address', email_address: profile.email, linked_to: [] }]
      : [],
    image_url: 'https://img.clerk.com/none',
    created_at: profile.updatedAt,
    updated_at: profile.updatedAt,
    public_metadata: {},
  };
}

/** A Clerk event envelope. */
export function clerkEvent(type: string, data: Record<string, unknown>): Record<string, unknown> {
  return { data, object: 'event', type, timestamp: Date.now(), instance_id: 'ins_test' };
}
