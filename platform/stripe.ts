/**
 * The one way the cloud makes a Stripe client, for the api (checkout, portal, webhooks) and the worker
 * (meter events). Without STRIPE_SECRET_KEY there is no client: billing routes answer 503 and every
 * account has Free limits. STRIPE_API_URL (test deployments only; config refuses it in production)
 * points the real client at the project's fake in front of stripe-mock.
 */
import Stripe from 'stripe';
import type { Config } from './config.js';

/** Retries of one call on connection errors, 409s and 5xx (with the client's own idempotency key). */
const MAX_NETWORK_RETRIES = 2;
/** Per request: a Stripe call that hangs must fail a webhook or an activity, not hold it forever. */
const REQUEST_TIMEOUT_MS = 20_000;

export function createStripeClient(billing: Config['billing']): Stripe | null {
  if (!billing.stripeSecretKey) return null;
  return new Stripe(billing.stripeSecretKey, {
    maxNetworkRetries: MAX_NETWORK_RETRIES,
    timeout: REQUEST_TIMEOUT_MS,
    // no request metrics sent to Stripe in later request headers
    telemetry: false,
    appInfo: { name: 'factory-factory-cloud' },
    ...(billing.stripeApiUrl ? endpointOf(billing.stripeApiUrl) : {}),
  });
}

function endpointOf(url: string): { host: string; port: number; protocol: 'http' | 'https' } {
  const parsed = new URL(url);
  const protocol = parsed.protocol === 'http:' ? 'http' : 'https';
  const port = parsed.port ? Number(parsed.port) : protocol === 'http' ? 80 : 443;
  return { host: parsed.hostname, port, protocol };
}
