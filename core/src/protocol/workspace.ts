// The portable state of one workspace: the payload of send-to-cloud (desktop → VM) and pull-from-cloud
// (VM → desktop). Field names follow the desktop app's data model so either side maps it one to one.
// Whoever imports the payload owns the workspace afterwards; `location` says which side's ratchet polls it.
import { z } from 'zod';

export const PORTABLE_WORKSPACE_STATE_VERSION = 1;

export const WorkspaceLocationSchema = z.enum(['DESKTOP', 'CLOUD']);
export type WorkspaceLocation = z.output<typeof WorkspaceLocationSchema>;

/** The ratchet's derived PR state, as stored beside the workspace; core/ratchet's RatchetState is this. */
export const RatchetStateSchema = z.enum([
  'IDLE',
  'CI_RUNNING',
  'CI_FAILED',
  'MERGE_CONFLICT',
  'REVIEW_PENDING',
  'READY',
  'MERGED',
]);
export type RatchetStateName = z.output<typeof RatchetStateSchema>;

/** Workspace ids become directory names and Temporal workflow ids, so they are kept boring. */
export const WorkspaceIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'workspace id must be 1-64 of [A-Za-z0-9_-]');

const IsoTimeSchema = z.iso.datetime({ offset: true });

export const PortableWorkspaceStateSchema = z.object({
  version: z.literal(PORTABLE_WORKSPACE_STATE_VERSION),
  workspaceId: WorkspaceIdSchema,
  name: z.string().min(1).max(200),
  /** Clone URL of the repository; the importing side clones it with its own credentials. */
  repoUrl: z.string().min(1).max(2048),
  branchName: z.string().min(1).max(255),
  baseBranch: z.string().min(1).max(255).nullable(),
  location: WorkspaceLocationSchema,
  prUrl: z.string().max(2048).nullable(),
  prNumber: z.number().int().positive().nullable(),
  githubIssueNumber: z.number().int().positive().nullable(),
  githubIssueUrl: z.string().max(2048).nullable(),
  ratchetEnabled: z.boolean(),
  ratchetState: RatchetStateSchema,
  /** The ratchet's dedup key: the snapshot key of the last fixer dispatch (named after the desktop column). */
  ratchetLastCiRunId: z.string().max(4096).nullable(),
  /** Time of the newest review activity the ratchet already handed to a fixer. */
  prReviewLastCheckedAt: IsoTimeSchema.nullable(),
  /**
   * Keys of recent dispatches, newest last (cloud extension; the desktop may omit it). Lets the importing
   * side keep refusing a situation that was already handed to a fixer even if the PR flips back to it.
   */
  ratchetDispatchKeys: z.array(z.string().max(4096)).max(50).default([]),
  /**
   * The desktop's "fixer active" marker: the id of a ratchet fixer session working on the sender's side.
   * The cloud refuses a send that carries one (409 "Fixer session active — wait or stop it first").
   * Absent or null: no fixer is working (an export from the VM never carries one).
   */
  ratchetActiveSessionId: z.string().min(1).max(200).nullable().optional(),
  exportedAt: IsoTimeSchema,
});
export type PortableWorkspaceState = z.output<typeof PortableWorkspaceStateSchema>;
/** What a sender may write (defaults not yet applied). */
export type PortableWorkspaceStateInput = z.input<typeof PortableWorkspaceStateSchema>;

// ---------------------------------------------------------------------------------------------------------
// Workspaces as the VM agent reports them and as callers ask for them

/** NEW → PROVISIONING → READY | FAILED → ARCHIVED; FAILED → PROVISIONING is a (capped) retry. */
export const WorkspaceStatusSchema = z.enum(['NEW', 'PROVISIONING', 'READY', 'FAILED', 'ARCHIVED']);
export type WorkspaceStatus = z.output<typeof WorkspaceStatusSchema>;

export const WorkspaceCreationSourceSchema = z.enum(['MANUAL', 'RESUME_BRANCH', 'GITHUB_ISSUE', 'IMPORT']);
export type WorkspaceCreationSource = z.output<typeof WorkspaceCreationSourceSchema>;

/** Outcome of `factory-factory.json`'s setup script; `output` keeps the tail of stdout+stderr. */
export const SetupScriptResultSchema = z.object({
  status: z.enum(['NOT_RUN', 'NOT_CONFIGURED', 'INVALID_CONFIG', 'SUCCEEDED', 'FAILED', 'TIMED_OUT']),
  exitCode: z.number().int().nullable(),
  output: z.string(),
});
export type SetupScriptResult = z.output<typeof SetupScriptResultSchema>;

export const WorkspaceSchema = z.object({
  id: WorkspaceIdSchema,
  name: z.string(),
  status: WorkspaceStatusSchema,
  creationSource: WorkspaceCreationSourceSchema,
  repoUrl: z.string(),
  /** NEW: create branchName (suffixed on collision); EXISTING: check out the branch as it is on origin. */
  branchMode: z.enum(['NEW', 'EXISTING']),
  branchName: z.string(),
  baseBranch: z.string().nullable(),
  worktreePath: z.string().nullable(),
  initRetryCount: z.number().int().nonnegative(),
  initError: z.string().nullable(),
  setup: SetupScriptResultSchema,
  prUrl: z.string().nullable(),
  prNumber: z.number().int().positive().nullable(),
  githubIssueNumber: z.number().int().positive().nullable(),
  githubIssueUrl: z.string().nullable(),
  ratchetEnabled: z.boolean(),
  ratchetState: RatchetStateSchema,
  ratchetLastCiRunId: z.string().nullable(),
  prReviewLastCheckedAt: z.string().nullable(),
  ratchetDispatchKeys: z.array(z.string()),
  location: WorkspaceLocationSchema,
  /** First prompt waiting for the workspace's first session (e.g. the issue to work on), sent once. */
  queuedPrompt: z.string().nullable(),
  createdAt: IsoTimeSchema,
  updatedAt: IsoTimeSchema,
  /** Bumped by every write; the compare-and-swap token for non-status updates. */
  version: z.number().int().nonnegative(),
});
export type Workspace = z.output<typeof WorkspaceSchema>;

const RepoUrlSchema = z.string().min(1).max(2048);
const CreateCommon = {
  /**
   * Chosen by the caller to make creation idempotent: creating it again (a retried request) returns the
   * workspace the first call made instead of a second one. A fresh id is generated when absent.
   */
  id: WorkspaceIdSchema.optional(),
  ratchetEnabled: z.boolean().optional(),
};

export const CreateWorkspaceInputSchema = z.discriminatedUnion('source', [
  z.object({
    source: z.literal('MANUAL'),
    repoUrl: RepoUrlSchema,
    name: z.string().min(1).max(200),
    baseBranch: z.string().min(1).max(255).optional(),
    /** Branch prefix; defaults to the gh login when the GitHub bridge can tell. */
    user: z.string().min(1).max(100).optional(),
    ...CreateCommon,
  }),
  z.object({
    source: z.literal('RESUME_BRANCH'),
    repoUrl: RepoUrlSchema,
    branchName: z.string().min(1).max(255),
    name: z.string().min(1).max(200).optional(),
    ...CreateCommon,
  }),
  z.object({
    source: z.literal('GITHUB_ISSUE'),
    issueUrl: z.string().min(1).max(2048),
    /** Clone URL; defaults to https://<host>/<owner>/<repo>.git from the issue URL. */
    repoUrl: RepoUrlSchema.optional(),
    baseBranch: z.string().min(1).max(255).optional(),
    user: z.string().min(1).max(100).optional(),
    ...CreateCommon,
  }),
]);
export type CreateWorkspaceInput = z.input<typeof CreateWorkspaceInputSchema>;
