/**
 * Messages of the workspace:<workspaceId> actor: one cloud workspace of one user. The api starts it with
 * update-with-start of `sendToCloud` (POST /api/workspaces answers at once, PROVISIONING); the actor
 * ensures the user's VM through vm:<userId>, restores the workspace inside it through the agent, and
 * writes every transition to the `workspaces` read model, which is what the api reads.
 *
 *   PROVISIONING ──restore ok──▶ READY ──pull──▶ READY (location DESKTOP; the actor ends)
 *        │                         └──archive──▶ ARCHIVED (the actor ends)
 *        └──restore failed──▶ FAILED ──retry──▶ PROVISIONING
 *
 * While READY in the cloud with the ratchet enabled it keeps a ratchet:<workspaceId> actor running, seeded
 * with the sent state's ratchet memory; a pull asks that actor to hand its memory back (refused while a
 * fixer works) and returns it in the pulled state; an archive ends it.
 */
import { PortableWorkspaceStateSchema, WorkspaceIdSchema } from '@factory-factory/core/protocol';
import { defineQuery, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { RatchetMemorySchema, RatchetViewSchema } from '../ratchet/messages.js';

const UserIdSchema = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'a user id is 1-128 of [A-Za-z0-9_.@-]');

/** What a send carries: the desktop's portable state, or a GitHub issue to start from. */
export const WorkspaceSourceSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('portable'), state: PortableWorkspaceStateSchema }),
  z.object({
    kind: z.literal('issue'),
    issueUrl: z.string().min(1).max(2048),
    repoUrl: z.string().min(1).max(2048).optional(),
    baseBranch: z.string().min(1).max(255).optional(),
    name: z.string().min(1).max(200).optional(),
    ratchetEnabled: z.boolean().optional(),
  }),
]);
export type WorkspaceSource = z.output<typeof WorkspaceSourceSchema>;

const duration = z
  .number()
  .int()
  .positive()
  .max(24 * 3600 * 1000);

export const WorkspaceSettingsSchema = z.object({
  /** How long a restore (VM ready + clone + worktree + setup script) may take before FAILED. */
  restoreTimeoutMs: duration,
  /** Automatic retries of a failed restore before it waits for the user's retry. */
  maxAutoRetries: z.number().int().min(0).max(10),
});
export type WorkspaceSettings = z.output<typeof WorkspaceSettingsSchema>;

export const defaultWorkspaceSettings: WorkspaceSettings = {
  restoreTimeoutMs: 20 * 60 * 1000,
  maxAutoRetries: 0,
};

/** How long an actor whose workspace was pulled waits for it to be sent again before it ends (when unset). */
export const DEFAULT_DESKTOP_LINGER_MS = 60 * 60 * 1000;
/** Continue-as-new once history has this many events (when unset). */
export const DEFAULT_WORKSPACE_MAX_HISTORY_EVENTS = 2000;

export const CloudWorkspaceStatusSchema = z.enum(['PROVISIONING', 'READY', 'FAILED', 'ARCHIVED']);
export type CloudWorkspaceStatus = z.output<typeof CloudWorkspaceStatusSchema>;
const LocationSchema = z.enum(['DESKTOP', 'CLOUD']);
const finiteMs = z.number().finite();

/** What the view shows of a workspace; from the send until the agent reports it, then from the agent. */
export const WorkspaceDetailsSchema = z.object({
  name: z.string().max(200),
  repoUrl: z.string().max(2048).nullable(),
  branchName: z.string().max(255).nullable(),
  baseBranch: z.string().max(255).nullable(),
  prUrl: z.string().max(2048).nullable(),
  prNumber: z.number().int().nullable(),
  githubIssueUrl: z.string().max(2048).nullable(),
  githubIssueNumber: z.number().int().nullable(),
  ratchetEnabled: z.boolean(),
  ratchetState: z.string().max(64),
});

export const WorkspaceProblemSchema = z.object({
  source: z.literal('database'),
  message: z.string().max(4096),
  sinceMs: finiteMs,
  lastAtMs: finiteMs,
  attempts: z.number().int().min(1),
});

/** The workspace's side of its ratchet:<workspaceId> actor. */
export const WorkspaceRatchetLinkSchema = z.object({
  /** What a (re)started ratchet starts from: the sent state's, then what the last handoff returned. */
  memory: RatchetMemorySchema,
  /** What the ratchet actor of this stint was last told; null: none started (or it handed off / ended). */
  actorEnabled: z.boolean().nullable(),
  /** A start or setting that failed is tried again then. */
  retryAtMs: finiteMs.nullable(),
  failures: z.number().int().min(0).max(1000),
});

/** The actor's state as a continue-as-new carries it (our own output, but a raw client can forge one). */
export const CarriedWorkspaceStateSchema = z
  .object({
    workspaceId: WorkspaceIdSchema,
    userId: UserIdSchema,
    source: WorkspaceSourceSchema,
    status: CloudWorkspaceStatusSchema,
    location: LocationSchema,
    step: z.enum(['vm', 'restore', 'done']).nullable(),
    details: WorkspaceDetailsSchema,
    failureReason: z.string().max(16_384).nullable(),
    failureRetryable: z.boolean(),
    autoRetries: z.number().int().min(0).max(1000),
    restoreSeq: z.number().int().min(0),
    pendingRestore: z.enum(['send', 'retry']).nullable(),
    recordedSeq: z.number().int().min(0),
    createdAtMs: finiteMs,
    updatedAtMs: finiteMs,
    pulledAtMs: finiteMs.nullable(),
    version: z.number().int().nonnegative(),
    problem: WorkspaceProblemSchema.nullable(),
    /** Absent in states carried from runs that predate the cloud ratchet. */
    ratchet: WorkspaceRatchetLinkSchema.optional(),
  })
  .strip();

export const WorkspaceActorInputSchema = z.object({
  workspaceId: WorkspaceIdSchema,
  userId: UserIdSchema,
  source: WorkspaceSourceSchema,
  settings: WorkspaceSettingsSchema.extend({
    /** After a pull, how long the actor waits for the next send before it ends (the read model stays). */
    desktopLingerMs: duration.optional(),
    /** Continue-as-new once history has this many events. */
    maxHistoryEvents: z.number().int().min(10).max(50_000).optional(),
    /** Set FfcUserId/FfcWorkspaceId for ops; false only on a server without our search attributes. */
    searchAttributes: z.boolean().optional(),
  }),
  /** Set by continue-as-new: the state carried into the next run. */
  carried: z.object({ state: CarriedWorkspaceStateSchema }).optional(),
});
export type WorkspaceActorInput = z.output<typeof WorkspaceActorInputSchema>;

/** The argument of sendToCloud, checked by its validator. */
export const SendToCloudArgsSchema = z.object({ userId: UserIdSchema, source: WorkspaceSourceSchema });

/** What callers see (the api's GET answers, the read model's `view`). */
export const WorkspaceViewSchema = z.object({
  id: WorkspaceIdSchema,
  userId: z.string(),
  name: z.string(),
  status: CloudWorkspaceStatusSchema,
  location: z.enum(['DESKTOP', 'CLOUD']),
  repoUrl: z.string().nullable(),
  branchName: z.string().nullable(),
  baseBranch: z.string().nullable(),
  prUrl: z.string().nullable(),
  prNumber: z.number().int().nullable(),
  githubIssueUrl: z.string().nullable(),
  githubIssueNumber: z.number().int().nullable(),
  ratchetEnabled: z.boolean(),
  ratchetState: z.string(),
  /** Why the last restore failed (FAILED), in words a user can act on. */
  failureReason: z.string().nullable(),
  /** Which step a PROVISIONING workspace is in, for progress output. */
  step: z.enum(['vm', 'restore', 'done']).nullable(),
  /**
   * Something the actor keeps retrying (the database not answering), shown instead of hidden; null when
   * all is well. Absent in views written before it existed.
   */
  problem: z
    .object({ source: z.literal('database'), message: z.string(), since: z.string() })
    .nullable()
    .optional(),
  /**
   * The cloud ratchet's view (state, last decision, active fixer, problems), from its read model; null when
   * none ran for this workspace. Filled in by the api's reads; the actor's own view leaves it out.
   */
  ratchet: RatchetViewSchema.nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  /** Bumped by every write of the read model (compare-and-swap). */
  version: z.number().int().nonnegative(),
});
export type WorkspaceView = z.output<typeof WorkspaceViewSchema>;

/** Failure types the api maps to HTTP errors. */
export const WorkspaceErrorType = {
  /** A ratchet fixer session is working: pull and archive must wait (409). */
  fixerActive: 'WorkspaceFixerActive',
  /** The workspace is archived; nothing more can be done with it (409). */
  archived: 'WorkspaceArchived',
  /** The operation needs a READY workspace (409). */
  notReady: 'WorkspaceNotReady',
  /** The send was refused (bad repo URL, unreadable issue) (400). */
  invalidSource: 'WorkspaceInvalidSource',
  /** The workspace belongs to someone else (answered as 404 by the api). */
  notOwner: 'WorkspaceNotOwner',
  /** The VM or its agent did not answer; trying again later may work (503). */
  unavailable: 'WorkspaceUnavailable',
  /** A malformed start, continue-as-new or update argument (400 if it ever came from the api). */
  invalidInput: 'WorkspaceInvalidInput',
} as const;

/**
 * Send (or send again after a pull): the actor takes the state and restores it. Answers with the view as
 * soon as the send is recorded (PROVISIONING), not when the restore is done.
 */
export const sendToCloudUpdate = defineUpdate<WorkspaceView, [{ userId: string; source: WorkspaceSource }]>(
  'sendToCloud',
);
/** Hands the workspace back to the desktop: its portable state, location DESKTOP. Refused while a fixer works. */
export const pullUpdate = defineUpdate<PullResult>('pull');
/** Stops its sessions and removes its worktree in the VM (the branch stays). Refused while a fixer works. */
export const archiveUpdate = defineUpdate<WorkspaceView>('archive');
/** The argument of setRatchet. */
export const SetWorkspaceRatchetArgsSchema = z.object({ enabled: z.boolean() }).strict();
/**
 * Turns the cloud ratchet on or off: recorded in the view (ratchetEnabled) and told to ratchet:<id>, which
 * is started (with the workspace's ratchet memory) if it does not run. Answers the view once told.
 */
export const setWorkspaceRatchetUpdate = defineUpdate<WorkspaceView, [{ enabled: boolean }]>('setRatchet');
/** Restores a FAILED workspace again. */
export const retryUpdate = defineUpdate<WorkspaceView>('retry');
export const workspaceViewQuery = defineQuery<WorkspaceView>('view');

export const SessionSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  workflow: z.enum(['followup', 'ratchet']),
  claudeSessionId: z.string().nullable(),
  messageCount: z.number().int(),
  createdAt: z.string(),
});

export const PullResultSchema = z.object({
  workspace: WorkspaceViewSchema,
  state: PortableWorkspaceStateSchema,
  sessions: z.array(SessionSummarySchema),
});
export type PullResult = z.output<typeof PullResultSchema>;
