/** The account pages' data: API keys, the audit log, usage and billing, and the VM. */
import { defineStore } from 'pinia';
import { ref } from 'vue';
import { ApiError } from '../lib/api-client.js';
import { appDeps } from '../lib/deps.js';
import {
  type ApiKey,
  type AuditRecord,
  isApiKeyAnswer,
  isApiKeyList,
  isAuditPage,
  isBillingRedirect,
  isCreatedApiKey,
  isUsage,
  isVmAnswer,
  type PlanName,
  type Usage,
  type VmView,
} from '../lib/types.js';
import { api } from './api.js';

export const useKeys = defineStore('keys', () => {
  const keys = ref<ApiKey[]>([]);
  /** The secret of the key just created: shown this once. */
  const newSecret = ref<{ name: string; secret: string } | null>(null);

  async function load(): Promise<void> {
    keys.value = (await api().get('/api/keys', isApiKeyList)).keys;
  }

  async function create(name: string): Promise<void> {
    const created = await api().post('/api/keys', { name: name.trim() }, isCreatedApiKey);
    newSecret.value = { name: created.key.name, secret: created.secret };
    keys.value = [created.key, ...keys.value.filter((k) => k.id !== created.key.id)];
  }

  async function revoke(id: string): Promise<void> {
    const answer = await api().delete(`/api/keys/${encodeURIComponent(id)}`, isApiKeyAnswer);
    keys.value = keys.value.map((k) => (k.id === id ? answer.key : k));
  }

  function dismissSecret(): void {
    newSecret.value = null;
  }

  return { keys, newSecret, load, create, revoke, dismissSecret };
});

export const useAudit = defineStore('audit', () => {
  const records = ref<AuditRecord[]>([]);
  const nextCursor = ref<string | null>(null);

  async function load(): Promise<void> {
    const page = await api().get('/api/audit?limit=50', isAuditPage);
    records.value = page.records;
    nextCursor.value = page.nextCursor;
  }

  async function loadMore(): Promise<void> {
    if (!nextCursor.value) return;
    const page = await api().get(
      `/api/audit?limit=50&cursor=${encodeURIComponent(nextCursor.value)}`,
      isAuditPage,
    );
    records.value = [...records.value, ...page.records];
    nextCursor.value = page.nextCursor;
  }

  return { records, nextCursor, load, loadMore };
});

/** The plan one step up, or null on the top plan. */
export function nextPlan(plan: PlanName): 'PRO' | 'TEAM' | null {
  return plan === 'FREE' ? 'PRO' : plan === 'PRO' ? 'TEAM' : null;
}

export const useUsage = defineStore('usage', () => {
  const usage = ref<Usage | null>(null);

  async function load(): Promise<void> {
    usage.value = await api().get('/api/usage', isUsage);
  }

  /** Off to Stripe Checkout for `plan`. */
  async function upgrade(plan: 'PRO' | 'TEAM'): Promise<void> {
    const { url } = await api().post('/api/billing/checkout', { plan }, isBillingRedirect);
    appDeps().navigateAway(url);
  }

  /** Off to Stripe's customer portal (subscription, payment method, invoices). */
  async function openPortal(): Promise<void> {
    const { url } = await api().post('/api/billing/portal', {}, isBillingRedirect);
    appDeps().navigateAway(url);
  }

  return { usage, load, upgrade, openPortal };
});

export const useVm = defineStore('vm', () => {
  const vm = ref<VmView | null>(null);
  /** True once GET /api/vms/me said there is no VM yet. */
  const missing = ref(false);

  function set(view: VmView): void {
    vm.value = view;
    missing.value = false;
  }

  async function load(): Promise<void> {
    try {
      set((await api().get('/api/vms/me', isVmAnswer)).vm);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404) throw err;
      vm.value = null;
      missing.value = true;
    }
  }

  /** Provision or resume; the api answers once the VM's agent answers. */
  async function start(): Promise<void> {
    set((await api().post('/api/vms', {}, isVmAnswer)).vm);
  }

  async function suspend(): Promise<void> {
    set((await api().post('/api/vms/me/suspend', {}, isVmAnswer)).vm);
  }

  return { vm, missing, load, start, suspend };
});
