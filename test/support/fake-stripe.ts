/**
 * The project's fake of Stripe: what STRIPE_API_URL points at in tests. Every request the real `stripe`
 * client sends is first forwarded to a real stripe-mock (test/support/stripe-mock.ts), so Stripe's own API
 * description validates it; a request stripe-mock rejects is answered with stripe-mock's error. For the
 * calls billing makes, the fake then answers from state of its own, which stripe-mock does not keep
 * (it answers fixtures): customers, checkout sessions, subscriptions, portal sessions, meter events (a
 * repeated identifier is refused with a 400, as Stripe does), idempotency keys (replayed as Stripe does),
 * and a log of every request. Answers are stripe-mock's fixture with the fake's fields laid over it, so
 * their shape is Stripe's.
 *
 * It also plays Stripe's side of webhooks: events built from its state, signed for real with the endpoint
 * secret (stripe.webhooks.generateTestHeaderString) and POSTed to the api, with ids and `created` times a
 * test controls, so it can deliver duplicates, out-of-order events and forgeries.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { type StripeMock, type StripeMockAnswer, startStripeMock } from './stripe-mock.js';

type Json = Record<string, unknown>;

/** Stripe's form encoding of parameters: `a[b][0][c]=v` → `{ a: { b: [{ c: 'v' }] } }`. */
export function parseStripeForm(text: string): Json {
  const root: Json = {};
  for (const [key, value] of new URLSearchParams(text)) {
    const head = key.match(/^[^[]+/)?.[0] ?? key;
    const path = [head, ...[...key.slice(head.length).matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] ?? '')];
    let node: Json = root;
    path.forEach((part, i) => {
      if (i === path.length - 1) {
        node[part === '' ? String(Object.keys(node).length) : part] = value;
        return;
      }
      const next = node[part];
      if (typeof next === 'object' && next !== null) node = next as Json;
      else {
        const created: Json = {};
        node[part] = created;
        node = created;
      }
    });
  }
  return arraysOf(root) as Json;
}

/** Objects whose keys are all indices become arrays (the form encoding has no arrays of its own). */
function arraysOf(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value as Json).map(([k, v]) => [k, arraysOf(v)] as const);
  if (entries.length > 0 && entries.every(([k]) => /^\d+$/.test(k))) {
    return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v);
  }
  return Object.fromEntries(entries);
}

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const obj = (value: unknown): Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const stringRecord = (value: unknown): Record<string, string> =>
  Object.fromEntries(
    Object.entries(obj(value)).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
const id = (prefix: string) => `${prefix}_fake${randomBytes(8).toString('hex')}`;
const nowSec = () => Math.floor(Date.now() / 1000);

export type FakeCustomer = {
  id: string;
  email: string | null;
  metadata: Record<string, string>;
  object: Json;
};
export type FakeCheckoutSession = {
  id: string;
  url: string;
  mode: string;
  customer: string;
  clientReferenceId: string | null;
  price: string | null;
  metadata: Record<string, string>;
  subscriptionMetadata: Record<string, string>;
  status: 'open' | 'complete';
  subscription: string | null;
  object: Json;
};
export type FakeSubscription = {
  id: string;
  customer: string;
  status: string;
  price: string;
  metadata: Record<string, string>;
  created: number;
  currentPeriodStart: number;
  currentPeriodEnd: number;
};
export type FakeMeterEvent = {
  identifier: string;
  eventName: string;
  customer: string;
  value: number;
  timestamp: number;
};
export type FakePortalSession = { id: string; customer: string; url: string; returnUrl: string | null };
export type LoggedRequest = {
  method: string;
  path: string;
  params: Json;
  idempotencyKey: string | null;
  status: number;
  /** Who answered: stripe-mock rejected it, the fake's state, stripe-mock's fixture, or an idempotent replay. */
  answeredBy: 'stripe-mock-error' | 'fake' | 'stripe-mock' | 'replay';
};

export type StripeEvent = {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: Json; previous_attributes?: Json };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
};

/** How an event is made: a test picks ids and Stripe's timestamps to stage duplicates and reorderings. */
export type EventOptions = { id?: string; created?: number };

/** How a delivery is signed: for real (default), or forged one of the ways an attacker could. */
export type Forgery = 'wrong-secret' | 'tampered-body' | 'stale-timestamp' | 'no-signature';

export type Delivery = { status: number; body: unknown; event: StripeEvent };

type Answer = { status: number; body: Json; headers?: Record<string, string> };

export type Hold = {
  method: string;
  path: string;
  /** Requests held so far. */
  arrived: number;
  released: Promise<void>;
  arrive: () => void;
  waitFor: (count: number) => Promise<void>;
  release: () => void;
};

const stripeError = (status: number, error: Json, headers?: Record<string, string>): Answer => ({
  status,
  body: { error: { type: 'invalid_request_error', ...error } },
  ...(headers ? { headers } : {}),
});

export class FakeStripe {
  readonly customers = new Map<string, FakeCustomer>();
  readonly checkoutSessions = new Map<string, FakeCheckoutSession>();
  readonly subscriptions = new Map<string, FakeSubscription>();
  readonly portalSessions: FakePortalSession[] = [];
  readonly meterEvents = new Map<string, FakeMeterEvent>();
  readonly requests: LoggedRequest[] = [];
  readonly deliveries: { event: StripeEvent; status: number; forgery: Forgery | null }[] = [];
  /** Stripe keeps idempotency keys 24 hours; a test sets this to stand for a retry after they expired. */
  idempotencyKeysExpired = false;
  /** Where webhooks go: the api's POST /api/webhooks/stripe. */
  webhookUrl: string | null = null;
  private readonly idempotent = new Map<string, { params: string; answer: Promise<Answer> }>();
  private readonly templates = new Map<string, Json>();
  private lastCreated = 0;
  private readonly holds: Hold[] = [];

  constructor(
    readonly url: string,
    readonly webhookSecret: string,
    private readonly mock: StripeMock,
  ) {}

  // ------------------------------------------------------------------------------------- for tests

  /**
   * Holds every request to one endpoint until released: a test makes racing calls really concurrent
   * (all of them reach Stripe before any answer) instead of hoping for it.
   */
  hold(method: string, path: string): Hold {
    let release = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const waiters: { count: number; resolve: () => void }[] = [];
    const hold: Hold = {
      method,
      path,
      arrived: 0,
      released,
      arrive: () => {
        hold.arrived += 1;
        for (const w of waiters) if (hold.arrived >= w.count) w.resolve();
      },
      waitFor: (count) =>
        hold.arrived >= count
          ? Promise.resolve()
          : new Promise((resolve) => waiters.push({ count, resolve })),
      release: () => {
        this.holds.splice(this.holds.indexOf(hold), 1);
        release();
      },
    };
    this.holds.push(hold);
    return hold;
  }

  customersOf(userId: string): FakeCustomer[] {
    return [...this.customers.values()].filter((c) => c.metadata.userId === userId);
  }

  /** The checkout session behind a URL the api answered. */
  sessionOfUrl(url: string): FakeCheckoutSession {
    const session = [...this.checkoutSessions.values()].find((s) => s.url === url);
    if (!session) throw new Error(`no checkout session has the URL ${url}`);
    return session;
  }

  /** Sum of the meter events' values for one customer (each identifier counted once, as Stripe does). */
  meterTotal(customerId: string, eventName?: string): number {
    let total = 0;
    for (const e of this.meterEvents.values()) {
      if (e.customer === customerId && (eventName === undefined || e.eventName === eventName))
        total += e.value;
    }
    return total;
  }

  requestsTo(method: string, path: string): LoggedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  /** A Stripe timestamp after every earlier one (unless a test gives its own). */
  private created(given?: number): number {
    if (given !== undefined) return given;
    this.lastCreated = Math.max(nowSec(), this.lastCreated + 1);
    return this.lastCreated;
  }

  event(type: string, object: Json, options: EventOptions = {}, previous?: Json): StripeEvent {
    return {
      id: options.id ?? id('evt'),
      object: 'event',
      api_version: Stripe.API_VERSION,
      created: this.created(options.created),
      data: { object, ...(previous ? { previous_attributes: previous } : {}) },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
  }

  /** Signs and POSTs one event to webhookUrl, as Stripe does; the api's answer. */
  async send(event: StripeEvent, options: { forgery?: Forgery } = {}): Promise<Delivery> {
    if (!this.webhookUrl) throw new Error('FakeStripe.webhookUrl is not set');
    const payload = JSON.stringify(event);
    const forgery = options.forgery ?? null;
    const header = Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: forgery === 'wrong-secret' ? `whsec_${randomBytes(16).toString('hex')}` : this.webhookSecret,
      ...(forgery === 'stale-timestamp' ? { timestamp: nowSec() - 3600 } : {}),
    });
    const body =
      forgery === 'tampered-body'
        ? payload.replace(/"created":\d+/, `"created":${event.created + 86_400}`)
        : payload;
    const response = await fetch(this.webhookUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json; charset=utf-8',
        'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
        ...(forgery === 'no-signature' ? {} : { 'stripe-signature': header }),
      },
      body,
    });
    const text = await response.text();
    let answer: unknown = text;
    try {
      answer = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    this.deliveries.push({ event, status: response.status, forgery });
    return { status: response.status, body: answer, event };
  }

  /** Sends and insists on a 2xx. */
  async deliver(event: StripeEvent): Promise<Delivery> {
    const delivery = await this.send(event);
    if (delivery.status < 200 || delivery.status >= 300) {
      throw new Error(
        `webhook ${event.type} ${event.id} answered ${delivery.status}: ${JSON.stringify(delivery.body)}`,
      );
    }
    return delivery;
  }

  /**
   * The customer pays on the Checkout page: the session completes and a subscription to its price starts.
   * Sends customer.subscription.created then checkout.session.completed (Stripe's order; both signed).
   */
  async complete(
    sessionId: string,
    options: {
      created?: number;
      subscriptionEventId?: string;
      checkoutEventId?: string;
      deliver?: boolean;
    } = {},
  ): Promise<{ subscription: FakeSubscription; events: StripeEvent[]; deliveries: Delivery[] }> {
    const session = this.checkoutSessions.get(sessionId);
    if (!session) throw new Error(`no checkout session ${sessionId}`);
    if (session.status === 'complete') throw new Error(`checkout session ${sessionId} is complete already`);
    if (!session.price) throw new Error(`checkout session ${sessionId} has no price`);
    const created = this.created(options.created);
    const subscription: FakeSubscription = {
      id: id('sub'),
      customer: session.customer,
      status: 'active',
      price: session.price,
      metadata: session.subscriptionMetadata,
      created,
      currentPeriodStart: created,
      currentPeriodEnd: created + 30 * 86_400,
    };
    this.subscriptions.set(subscription.id, subscription);
    session.status = 'complete';
    session.subscription = subscription.id;
    const events = [
      this.event('customer.subscription.created', await this.subscriptionObject(subscription), {
        created,
        ...(options.subscriptionEventId ? { id: options.subscriptionEventId } : {}),
      }),
      this.event('checkout.session.completed', this.checkoutObject(session), {
        created,
        ...(options.checkoutEventId ? { id: options.checkoutEventId } : {}),
      }),
    ];
    const deliveries: Delivery[] = [];
    if (options.deliver !== false) for (const event of events) deliveries.push(await this.deliver(event));
    return { subscription, events, deliveries };
  }

  /** The subscription changes (a plan change or a status change in the portal, a renewal, dunning). */
  async subscriptionUpdated(
    subscriptionId: string,
    change: { price?: string; status?: string },
    options: EventOptions = {},
  ): Promise<StripeEvent> {
    const sub = this.subscription(subscriptionId);
    const previous: Json = {};
    if (change.price !== undefined && change.price !== sub.price) {
      previous.items = { data: [{ price: { id: sub.price } }] };
      sub.price = change.price;
    }
    if (change.status !== undefined && change.status !== sub.status) {
      previous.status = sub.status;
      sub.status = change.status;
    }
    return this.event('customer.subscription.updated', await this.subscriptionObject(sub), options, previous);
  }

  /** The subscription ends (canceled in the portal, or after failed payments). */
  async subscriptionDeleted(subscriptionId: string, options: EventOptions = {}): Promise<StripeEvent> {
    const sub = this.subscription(subscriptionId);
    sub.status = 'canceled';
    return this.event('customer.subscription.deleted', await this.subscriptionObject(sub), options);
  }

  /** A renewal invoice of the subscription failed (invoice.payment_failed) or was paid (invoice.paid). */
  async invoice(
    subscriptionId: string,
    outcome: 'payment_failed' | 'paid',
    options: EventOptions = {},
  ): Promise<StripeEvent> {
    const sub = this.subscription(subscriptionId);
    const template = await this.template('/v1/invoices/in_template');
    const object: Json = {
      ...template,
      id: id('in'),
      customer: sub.customer,
      status: outcome === 'paid' ? 'paid' : 'open',
      paid: outcome === 'paid',
      attempted: true,
      parent: {
        type: 'subscription_details',
        quote_details: null,
        subscription_details: { metadata: sub.metadata, subscription: sub.id },
      },
    };
    return this.event(`invoice.${outcome}`, object, options);
  }

  private subscription(subscriptionId: string): FakeSubscription {
    const sub = this.subscriptions.get(subscriptionId);
    if (!sub) throw new Error(`no subscription ${subscriptionId}`);
    return sub;
  }

  /** stripe-mock's fixture for a GET path, fetched once: the shape of the objects the fake builds. */
  private async template(path: string): Promise<Json> {
    const cached = this.templates.get(path);
    if (cached) return structuredClone(cached);
    const answer = await this.mock.send({
      method: 'GET',
      path,
      headers: { authorization: 'Bearer sk_test_template' },
      body: '',
    });
    if (answer.status !== 200)
      throw new Error(`stripe-mock answered ${answer.status} for ${path}: ${answer.body}`);
    const object = obj(JSON.parse(answer.body));
    this.templates.set(path, object);
    return structuredClone(object);
  }

  private async subscriptionObject(sub: FakeSubscription): Promise<Json> {
    const template = await this.template('/v1/subscriptions/sub_template');
    const item = obj(list(obj(template.items).data)[0]);
    const ended = sub.status === 'canceled';
    return {
      ...template,
      id: sub.id,
      customer: sub.customer,
      status: sub.status,
      created: sub.created,
      metadata: sub.metadata,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: ended ? nowSec() : null,
      ended_at: ended ? nowSec() : null,
      items: {
        object: 'list',
        has_more: false,
        url: `/v1/subscription_items?subscription=${sub.id}`,
        data: [
          {
            ...item,
            id: `si_${sub.id.slice(4)}`,
            subscription: sub.id,
            price: { ...obj(item.price), id: sub.price },
            current_period_start: sub.currentPeriodStart,
            current_period_end: sub.currentPeriodEnd,
          },
        ],
      },
    };
  }

  private checkoutObject(session: FakeCheckoutSession): Json {
    const complete = session.status === 'complete';
    return {
      ...session.object,
      status: session.status,
      payment_status: complete ? 'paid' : 'unpaid',
      subscription: session.subscription,
      url: complete ? null : session.url,
    };
  }

  // -------------------------------------------------------------------------------- the HTTP side

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://fake-stripe');
    const params = parseStripeForm(method === 'GET' || method === 'DELETE' ? url.search.slice(1) : body);
    const header = (name: string) => {
      const value = req.headers[name];
      return typeof value === 'string' ? value : null;
    };
    const idempotencyKey = method === 'POST' ? header('idempotency-key') : null;
    const hold = this.holds.find((h) => h.method === method && h.path === url.pathname);
    if (hold) {
      hold.arrive();
      await hold.released;
    }
    const log = (status: number, answeredBy: LoggedRequest['answeredBy']) =>
      this.requests.push({ method, path: url.pathname, params, idempotencyKey, status, answeredBy });

    let answer: Answer;
    let answeredBy: LoggedRequest['answeredBy'];
    const cacheKey =
      idempotencyKey && !this.idempotencyKeysExpired
        ? `${header('authorization') ?? ''} ${idempotencyKey}`
        : null;
    const earlier = cacheKey ? this.idempotent.get(cacheKey) : undefined;
    if (earlier) {
      // Stripe replays the first answer to a key, and refuses the key with other parameters.
      if (earlier.params !== `${method} ${url.pathname} ${body}`) {
        answer = stripeError(400, {
          type: 'idempotency_error',
          message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
        });
        answeredBy = 'fake';
      } else {
        answer = await earlier.answer;
        answer = { ...answer, headers: { ...answer.headers, 'idempotent-replayed': 'true' } };
        answeredBy = 'replay';
      }
    } else {
      const source: { by: LoggedRequest['answeredBy'] } = { by: 'fake' };
      const pending = (async (): Promise<Answer> => {
        const mocked = await this.mock.send({
          method,
          path: `${url.pathname}${url.search}`,
          headers: Object.fromEntries(
            ['authorization', 'content-type', 'stripe-version', 'idempotency-key']
              .map((name) => [name, header(name)] as const)
              .filter((e): e is [string, string] => e[1] !== null),
          ),
          body,
        });
        if (mocked.status >= 400) {
          source.by = 'stripe-mock-error';
          return { status: mocked.status, body: obj(JSON.parse(mocked.body)) };
        }
        const own = await this.route(method, url.pathname, params, mocked);
        if (own) return own;
        source.by = 'stripe-mock';
        return { status: mocked.status, body: obj(JSON.parse(mocked.body)) };
      })();
      // Only answers that did something are kept for replay: Stripe does not store validation errors.
      if (cacheKey)
        this.idempotent.set(cacheKey, { params: `${method} ${url.pathname} ${body}`, answer: pending });
      answer = await pending;
      answeredBy = source.by;
      if (cacheKey && answer.status >= 400 && answeredBy === 'stripe-mock-error')
        this.idempotent.delete(cacheKey);
    }
    log(answer.status, answeredBy);
    res.writeHead(answer.status, {
      'content-type': 'application/json',
      'request-id': id('req'),
      ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}),
      ...answer.headers,
    });
    res.end(JSON.stringify(answer.body));
  }

  /** The calls the fake keeps state for; null lets stripe-mock's fixture answer. */
  private async route(
    method: string,
    path: string,
    params: Json,
    mocked: StripeMockAnswer,
  ): Promise<Answer | null> {
    const fixture = () => obj(JSON.parse(mocked.body));
    const created = nowSec();
    /** The id in a GET path like /v1/customers/<id>, or null when this is not that path. */
    const getId = (prefix: string): string | null =>
      method === 'GET' && path.startsWith(prefix) && !path.slice(prefix.length).includes('/')
        ? path.slice(prefix.length)
        : null;
    let m: string | null;
    if (method === 'POST' && path === '/v1/customers') {
      const customer: FakeCustomer = {
        id: id('cus'),
        email: str(params.email),
        metadata: stringRecord(params.metadata),
        object: {},
      };
      customer.object = {
        ...fixture(),
        id: customer.id,
        email: customer.email,
        metadata: customer.metadata,
        created,
      };
      this.customers.set(customer.id, customer);
      return { status: 200, body: customer.object };
    }
    m = getId('/v1/customers/');
    if (m) {
      const customer = this.customers.get(m);
      return customer ? { status: 200, body: customer.object } : this.missing('customer', m);
    }
    if (method === 'POST' && path === '/v1/checkout/sessions') {
      const customerId = str(params.customer);
      if (customerId !== null && !this.customers.has(customerId)) return this.missing('customer', customerId);
      if (customerId === null)
        return stripeError(400, { message: 'The fake needs a customer on checkout sessions.' });
      const sessionId = id('cs_test');
      const session: FakeCheckoutSession = {
        id: sessionId,
        url: `https://checkout.stripe.com/c/pay/${sessionId}`,
        mode: str(params.mode) ?? 'payment',
        customer: customerId,
        clientReferenceId: str(params.client_reference_id),
        price: str(obj(list(params.line_items)[0]).price),
        metadata: stringRecord(params.metadata),
        subscriptionMetadata: stringRecord(obj(params.subscription_data).metadata),
        status: 'open',
        subscription: null,
        object: {},
      };
      session.object = {
        ...fixture(),
        id: sessionId,
        object: 'checkout.session',
        mode: session.mode,
        customer: customerId,
        client_reference_id: session.clientReferenceId,
        metadata: session.metadata,
        success_url: str(params.success_url),
        cancel_url: str(params.cancel_url),
        status: 'open',
        payment_status: 'unpaid',
        subscription: null,
        url: session.url,
        created,
      };
      this.checkoutSessions.set(sessionId, session);
      return { status: 200, body: session.object };
    }
    m = getId('/v1/checkout/sessions/');
    if (m) {
      const session = this.checkoutSessions.get(m);
      return session
        ? { status: 200, body: this.checkoutObject(session) }
        : this.missing('checkout.session', m);
    }
    m = getId('/v1/subscriptions/');
    if (m) {
      const sub = this.subscriptions.get(m);
      return sub
        ? { status: 200, body: await this.subscriptionObject(sub) }
        : this.missing('subscription', m);
    }
    if (method === 'POST' && path === '/v1/billing_portal/sessions') {
      const customerId = str(params.customer) ?? '';
      if (!this.customers.has(customerId)) return this.missing('customer', customerId);
      const session: FakePortalSession = {
        id: id('bps'),
        customer: customerId,
        returnUrl: str(params.return_url),
        url: '',
      };
      session.url = `https://billing.stripe.com/p/session/${session.id}`;
      this.portalSessions.push(session);
      return {
        status: 200,
        body: {
          ...fixture(),
          id: session.id,
          customer: customerId,
          return_url: session.returnUrl,
          url: session.url,
          created,
        },
      };
    }
    if (method === 'POST' && path === '/v1/billing/meter_events') {
      const payload = stringRecord(params.payload);
      const identifier = str(params.identifier) ?? id('mev');
      if (this.meterEvents.has(identifier)) {
        // What Stripe answers for an identifier it has seen (it keeps them at least 24 hours).
        return stripeError(
          400,
          { message: `An event already exists with identifier ${identifier}.` },
          { 'stripe-should-retry': 'false' },
        );
      }
      // Stripe files an event only in a recent period: 35 days back, 5 minutes ahead.
      const timestamp = Number(str(params.timestamp) ?? created);
      if (timestamp < created - 35 * 86_400 || timestamp > created + 300) {
        return stripeError(400, {
          code: timestamp < created ? 'timestamp_too_far_in_past' : 'timestamp_in_future',
          param: 'timestamp',
          message:
            'The timestamp must be within the past 35 calendar days and no more than 5 minutes in the future.',
        });
      }
      const event: FakeMeterEvent = {
        identifier,
        eventName: str(params.event_name) ?? '',
        customer: payload.stripe_customer_id ?? '',
        value: Number(payload.value ?? '0'),
        timestamp,
      };
      this.meterEvents.set(identifier, event);
      return {
        status: 200,
        body: {
          ...fixture(),
          event_name: event.eventName,
          identifier,
          payload,
          timestamp: event.timestamp,
          created,
        },
      };
    }
    return null;
  }

  private missing(what: string, which: string | undefined): Answer {
    return stripeError(404, {
      code: 'resource_missing',
      message: `No such ${what}: '${which ?? ''}'`,
      param: what === 'customer' ? 'customer' : 'id',
    });
  }
}

export type RunningFakeStripe = FakeStripe & { stop: () => Promise<void> };

/**
 * Starts the fake on a loopback port in front of a stripe-mock: the given one (shared by a test file), or
 * one of its own that stop() ends too.
 */
export async function startFakeStripe(
  options: { stripeMock?: StripeMock; webhookSecret?: string } = {},
): Promise<RunningFakeStripe> {
  const mock = options.stripeMock ?? (await startStripeMock());
  const webhookSecret = options.webhookSecret ?? `whsec_${randomBytes(24).toString('hex')}`;
  let fake: FakeStripe | null = null;
  const server = createServer((req, res) => {
    if (!fake) {
      res.writeHead(503).end();
      return;
    }
    fake.handle(req, res).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ error: { type: 'api_error', message: `fake Stripe failed: ${String(err)}` } }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake = new FakeStripe(`http://127.0.0.1:${port}`, webhookSecret, mock);
  const stop = async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    if (!options.stripeMock) await mock.stop();
  };
  return Object.assign(fake, { stop });
}
