import { z } from 'zod';
import {
  AskUserQuestionItem,
  type CanUseToolRequest,
  type CliPermissionDecision,
  type InteractiveRequest,
  type PermissionMode,
  type QuestionAnswers,
} from '../protocol/index.js';

/** What to do with one `can_use_tool` request from the CLI. */
export type ToolRequestRoute =
  | { kind: 'question'; questions: AskUserQuestionItem[] }
  | { kind: 'plan_approval'; planContent: string }
  | { kind: 'permission' }
  | { kind: 'auto'; decision: CliPermissionDecision };

const Questions = z.array(AskUserQuestionItem);

/**
 * Routes a tool permission request. AskUserQuestion and ExitPlanMode always need a human: they are
 * how the model talks to the user. Ordinary tools follow the session's permission mode: the CLI only
 * asks when its mode requires it, and in the two modes that never ask a human we answer ourselves.
 */
export function routeToolRequest(mode: PermissionMode, request: CanUseToolRequest): ToolRequestRoute {
  if (request.tool_name === 'AskUserQuestion') {
    const questions = Questions.safeParse(request.input.questions);
    if (questions.success) return { kind: 'question', questions: questions.data };
    return {
      kind: 'auto',
      decision: { behavior: 'deny', message: 'AskUserQuestion input had no readable questions.' },
    };
  }
  if (request.tool_name === 'ExitPlanMode') {
    return { kind: 'plan_approval', planContent: planContentOf(request.input) };
  }
  switch (mode) {
    case 'bypassPermissions':
      return { kind: 'auto', decision: { behavior: 'allow', updatedInput: request.input } };
    case 'dontAsk':
      return {
        kind: 'auto',
        decision: { behavior: 'deny', message: `Permission mode dontAsk denies ${request.tool_name}.` },
      };
    default:
      return { kind: 'permission' };
  }
}

function planContentOf(input: Record<string, unknown>): string {
  if (typeof input.plan === 'string') return input.plan;
  if (typeof input.planFile === 'string') return `Plan file: ${input.planFile}`;
  return '';
}

/** The CLI expects one string per question; a multi-select answer is sent as its labels joined. */
export function normalizeAnswers(answers: QuestionAnswers): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [question, answer] of Object.entries(answers)) {
    out[question] = Array.isArray(answer) ? answer.join(', ') : answer;
  }
  return out;
}

/** AskUserQuestion is answered by allowing it with the answers added to its input. */
export function questionAnswerDecision(
  request: Extract<InteractiveRequest, { kind: 'question' }>,
  originalInput: Record<string, unknown>,
  answers: QuestionAnswers,
): CliPermissionDecision {
  return {
    behavior: 'allow',
    updatedInput: { ...originalInput, questions: request.questions, answers: normalizeAnswers(answers) },
  };
}

export interface PermissionAnswer {
  allow: boolean;
  message?: string | undefined;
  updatedInput?: Record<string, unknown> | undefined;
}

export function permissionAnswerDecision(
  request: InteractiveRequest,
  answer: PermissionAnswer,
): CliPermissionDecision {
  if (!answer.allow) {
    const fallback =
      request.kind === 'plan_approval' ? 'User rejected the plan.' : 'User denied this action.';
    return { behavior: 'deny', message: answer.message ?? fallback };
  }
  const input = request.kind === 'question' ? {} : request.toolInput;
  return { behavior: 'allow', updatedInput: answer.updatedInput ?? input };
}
