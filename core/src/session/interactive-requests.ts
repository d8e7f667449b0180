import {
  CanUseToolRequest,
  type CliPermissionDecision,
  type InteractiveOutcome,
  type InteractiveRequest,
  type PermissionMode,
  type QuestionAnswers,
  type SessionEventPayload,
} from '../protocol/index.js';
import { SessionError } from './errors.js';
import {
  type PermissionAnswer,
  permissionAnswerDecision,
  questionAnswerDecision,
  routeToolRequest,
} from './interactive.js';

/** The session around the requests: its transcript, its events and its CLI. */
export interface InteractiveRequestsHost {
  readonly permissionMode: PermissionMode;
  /** 0: a request waits for the human however long it takes. */
  readonly timeoutMs: number;
  /** The request as the transcript holds it (the transcript is what clients see as pending). */
  requestInTranscript(requestId: string): InteractiveRequest | undefined;
  emit(payload: SessionEventPayload): void;
  /** Sends the decision to the CLI, if it is still there to read it. */
  reply(requestId: string, decision: CliPermissionDecision): void;
  /** Tells the CLI a control request it sent is not one we handle. */
  replyUnsupported(requestId: string, subtype: string): void;
  /** Someone answered: the silence while they thought is not the CLI hanging. */
  noteAnswered(): void;
}

interface Waiting {
  /** The tool's input as the CLI sent it: a question's answer is sent back inside it. */
  input: Record<string, unknown>;
  /** Null when requests wait for the human indefinitely. */
  timer: NodeJS.Timeout | null;
}

/**
 * The CLI's `can_use_tool` requests: answered at once where the permission mode decides them, else
 * put to a human (a permission prompt, a plan to approve, a question) and answered when they reply,
 * when the turn is cancelled, or when the deadline (if any) passes.
 */
export class InteractiveRequests {
  private readonly waiting = new Map<string, Waiting>();

  constructor(private readonly host: InteractiveRequestsHost) {}

  /** A human is being asked something. */
  get awaitingHuman(): boolean {
    return this.waiting.size > 0;
  }

  /** A control request from the CLI. */
  onControlRequest(requestId: string, request: { subtype: string } & Record<string, unknown>): void {
    if (request.subtype !== 'can_use_tool') {
      // We register no hooks or MCP servers, so nothing else is expected; answer so the CLI never waits.
      this.host.replyUnsupported(requestId, request.subtype);
      return;
    }
    const parsed = CanUseToolRequest.safeParse(request);
    if (!parsed.success) {
      this.host.reply(requestId, { behavior: 'deny', message: 'Malformed permission request.' });
      return;
    }
    const toolRequest = parsed.data;
    const route = routeToolRequest(this.host.permissionMode, toolRequest);
    if (route.kind === 'auto') {
      this.host.reply(requestId, route.decision);
      return;
    }
    let timer: NodeJS.Timeout | null = null;
    if (this.host.timeoutMs > 0) {
      timer = setTimeout(() => this.timeOut(requestId), this.host.timeoutMs);
      timer.unref();
    }
    this.waiting.set(requestId, { input: toolRequest.input, timer });
    const toolUseId = toolRequest.tool_use_id ?? null;
    if (route.kind === 'question') {
      this.host.emit({ type: 'user_question', requestId, toolUseId, questions: route.questions });
      return;
    }
    this.host.emit({
      type: 'permission_request',
      requestId,
      toolName: toolRequest.tool_name,
      toolUseId,
      toolInput: toolRequest.input,
      description: toolRequest.description ?? null,
      planContent: route.kind === 'plan_approval' ? route.planContent : null,
    });
  }

  answerQuestion(requestId: string, answers: QuestionAnswers): void {
    const request = this.pendingRequest(requestId);
    if (request.kind !== 'question') {
      throw new SessionError('bad_request', `request ${requestId} is a ${request.kind}, not a question`);
    }
    const input = this.waiting.get(requestId)?.input ?? {};
    this.resolve(requestId, 'answered', questionAnswerDecision(request, input, answers));
  }

  answerPermission(requestId: string, answer: PermissionAnswer): void {
    const request = this.pendingRequest(requestId);
    if (request.kind === 'question' && answer.allow) {
      throw new SessionError('bad_request', `request ${requestId} is a question: answer it with answers`);
    }
    this.resolve(requestId, answer.allow ? 'allowed' : 'denied', permissionAnswerDecision(request, answer));
  }

  /** The CLI withdrew the request (the turn was interrupted). */
  cancel(requestId: string): void {
    this.resolve(requestId, 'cancelled');
  }

  /**
   * Cancels every waiting request: with `decision` sent to the CLI (a stop, while it can still read
   * one), or without (the CLI is gone).
   */
  cancelAll(decision?: CliPermissionDecision): void {
    for (const requestId of [...this.waiting.keys()]) this.resolve(requestId, 'cancelled', decision);
  }

  private pendingRequest(requestId: string): InteractiveRequest {
    const request = this.host.requestInTranscript(requestId);
    if (!request || !this.waiting.has(requestId)) {
      throw new SessionError(
        'not_found',
        `no pending request ${requestId}: it was already answered, cancelled or timed out`,
      );
    }
    return request;
  }

  private timeOut(requestId: string): void {
    const seconds = Math.round(this.host.timeoutMs / 1000);
    this.resolve(requestId, 'timed_out', {
      behavior: 'deny',
      message: `No answer from the user within ${seconds} s; treat this as denied.`,
    });
  }

  private resolve(requestId: string, outcome: InteractiveOutcome, decision?: CliPermissionDecision): void {
    const entry = this.waiting.get(requestId);
    if (!entry) return;
    if (entry.timer) clearTimeout(entry.timer);
    this.waiting.delete(requestId);
    if (decision) this.host.reply(requestId, decision);
    this.host.noteAnswered();
    this.host.emit({ type: 'interactive_request_resolved', requestId, outcome });
  }
}
