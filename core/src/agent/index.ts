// Public surface of the agent: the in-VM server (startAgent), its typed client, and their parts.
export { type RunningAgent, readAgentSecret, type StartAgentOptions, startAgent } from './agent.js';
export {
  AgentClient,
  AgentClientError,
  type AgentClientOptions,
  type AgentProtocolError,
  AgentSubscription,
  type SessionFeed,
  type SessionFeedStart,
  type TerminalFeed,
} from './client.js';
export { type AgentConfig, AgentConfigError, loadAgentConfig } from './config.js';
export { CoreWorkspaces, type CoreWorkspacesOptions, createCoreWorkspaces } from './core-workspaces.js';
export { type CredentialStatus, createCredentialProbe } from './credentials.js';
export { AgentRequestError, toAgentError } from './errors.js';
export { createAgentHandlers, type HandlerDependencies } from './handlers.js';
export { handshakeProof, newNonce, proofMatches } from './handshake.js';
export { ProcessGroupLedger } from './process-groups.js';
export {
  type AgentHandlers,
  AgentServer,
  type AgentServerOptions,
  type RequestContext,
} from './server.js';
export { type ClaudeLaunchSettings, type CreateSessionInput, SessionRegistry } from './sessions.js';
export { AgentStore, type StoredSession } from './store.js';
export { readAgentVersion } from './version.js';
export type { AgentWorkspaceBridge } from './workspaces.js';
