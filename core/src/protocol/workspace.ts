// The portable state of one workspace: the payload of send-to-cloud (desktop → VM) and pull-from-cloud
// (VM → desktop). Field names follow the desktop app's data model so either side maps it one to one.
// Whoever imports the payload owns the workspace afterwards; `location` says which side's ratchet polls it.
import { z } from 'zod';

export const PORTABLE_WORKSPACE_STATE_VERSION = 1;

export const WorkspaceLocationSchema = z.enum(['DESKTOP', 'CLOUD']);
export type WorkspaceLocation = z.output<typeof WorkspaceLocationSchema>;

/** The ratchet's derived PR state, as stored beside the workspace (mirrors core/ratchet's RatchetState). */
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
  exportedAt: IsoTimeSchema,
});
export type PortableWorkspaceState = z.output<typeof PortableWorkspaceStateSchema>;
/** What a sender may write (defaults not yet applied). */
export type PortableWorkspaceStateInput = z.input<typeof PortableWorkspaceStateSchema>;
