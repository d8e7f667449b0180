/**
 * Search attributes our workflows set, so ops can find any user's VM or workspace in the Temporal UI
 * (e.g. `FfcUserId = "user_123"`). scripts/setup.ts registers exactly this list on the namespace.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const FfcUserId = defineSearchAttributeKey('FfcUserId', SearchAttributeType.KEYWORD);
export const FfcVmState = defineSearchAttributeKey('FfcVmState', SearchAttributeType.KEYWORD);
export const FfcWorkspaceId = defineSearchAttributeKey('FfcWorkspaceId', SearchAttributeType.KEYWORD);
/** The ratchet's derived PR state (CI_FAILED, REVIEW_PENDING, …) of a ratchet:<workspaceId> actor. */
export const FfcRatchetState = defineSearchAttributeKey('FfcRatchetState', SearchAttributeType.KEYWORD);

export const allSearchAttributes = [FfcUserId, FfcVmState, FfcWorkspaceId, FfcRatchetState] as const;
