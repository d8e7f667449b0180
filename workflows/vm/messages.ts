/**
 * Messages of the vm:<userId> actor. The api starts it lazily with update-with-start of `ensureReady`;
 * every other message goes to the running actor.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { VmContainerRef } from '../../activities/vm/types.js';
import type { OnboardingChecklist, VmOperation, VmState, VmStatus } from './state.js';

export type VmSettings = {
  idleTimeoutMs: number;
  healthIntervalMs: number;
  /** How long provisioning or a resume may wait for the agent to answer. */
  agentTimeoutMs: number;
  /** A VM that crashes this many times within the window is marked FAILED instead of restarted. */
  maxCrashes: number;
  crashWindowMs: number;
  /** Claim a started container from the warm pool before creating one. */
  useWarmPool: boolean;
  /** Continue-as-new once history has this many events (bounded history, bounded replay). */
  maxHistoryEvents: number;
  /**
   * Set FfcUserId/FfcVmState so ops can find the VM in the Temporal UI. False only on a server without
   * our search attributes (Temporal's time-skipping test server cannot register any).
   */
  searchAttributes: boolean;
};

export const defaultVmSettings: VmSettings = {
  idleTimeoutMs: 30 * 60 * 1000,
  healthIntervalMs: 30 * 1000,
  agentTimeoutMs: 60 * 1000,
  maxCrashes: 3,
  crashWindowMs: 10 * 60 * 1000,
  useWarmPool: false,
  maxHistoryEvents: 2000,
  searchAttributes: true,
};

export type VmWorkflowInput = {
  userId: string;
  settings: VmSettings;
  /** Set by continue-as-new: the state and requests carried into the next run. */
  carried?: { state: VmState; pending: PendingRequests };
};

export type PendingRequests = { ready: boolean; suspend: boolean; terminate: boolean };

/** What callers see: the state without internals, timestamps as ISO strings. */
export type VmView = {
  userId: string;
  vmId: string;
  status: VmStatus;
  operation: VmOperation | null;
  containerName: string | null;
  containerId: string | null;
  onboarding: OnboardingChecklist;
  failureReason: string | null;
  restarts: number;
  createdAt: string;
  updatedAt: string;
  lastActiveAt: string;
  lastHealthAt: string | null;
  readyAt: string | null;
  suspendedAt: string | null;
};

/** Failure types the api maps to HTTP errors. */
export const VmErrorType = {
  terminating: 'VmTerminating',
  terminated: 'VmTerminated',
  failed: 'VmFailed',
  busy: 'VmBusy',
  notRunning: 'VmNotRunning',
} as const;

/** Provision or resume; resolves once the agent answers (ONBOARDING or READY). */
export const ensureReadyUpdate = defineUpdate<VmView>('ensureReady');
/** Stop the container, keep it and its volume. A suspended VM answers at once. */
export const suspendUpdate = defineUpdate<VmView>('suspend');
/** Remove the container and the user's volume; the actor ends. */
export const terminateUpdate = defineUpdate<VmView>('terminate');
/** Any user traffic: restarts the idle timer. */
export const touchSignal = defineSignal('touch');
export const vmStateQuery = defineQuery<VmView>('state');
/** Where the agent of this VM listens (for the api's relay); null unless usable. */
export const vmContainerQuery = defineQuery<VmContainerRef | null>('container');
