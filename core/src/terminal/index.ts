// Public surface of the terminal domain: PTYs with scrollback for reattaching clients.
export { ScrollbackBuffer } from './scrollback.js';
export {
  type CreateTerminalOptions,
  type TerminalListener,
  TerminalManager,
  TerminalNotFoundError,
  type TerminalSubscription,
} from './terminals.js';
