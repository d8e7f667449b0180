/**
 * The answers of /api/vms/me and /api/vms/me/suspend. The contract folder describes workspaces and the relay
 * only, so ffc keeps the fields it shows of the VM view here (workflows/vm/messages.ts VmViewSchema is the
 * source); unknown fields are allowed so a newer api does not break an older ffc.
 */
import { z } from 'zod';

export const VmViewSchema = z.looseObject({
  vmId: z.string(),
  status: z.string(),
  operation: z.string().nullable(),
  onboarding: z.object({ githubCli: z.boolean(), claude: z.boolean() }),
  failureReason: z.string().nullable(),
  problem: z.looseObject({ source: z.string(), message: z.string() }).nullable().optional(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastActiveAt: z.string(),
  readyAt: z.string().nullable(),
  suspendedAt: z.string().nullable(),
});
export type VmView = z.output<typeof VmViewSchema>;

export const VmAnswerSchema = z.object({ vm: VmViewSchema });
