/**
 * Credentials never reach a log: the api takes them from headers only (middleware.ts), but a client may
 * still put one in a URL by mistake (`/api/keys/ffc_live_…`, `?token=eyJ…`). Anything shaped like an API
 * key or a JWT is cut out of text before it is logged.
 */
const API_KEY_LIKE = /ffc_live_[0-9A-Za-z]+(?:_[0-9A-Za-z]*)?/g;
const JWT_LIKE = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

export function redactCredentials(text: string): string {
  return text.replace(API_KEY_LIKE, 'ffc_live_[redacted]').replace(JWT_LIKE, '[redacted-jwt]');
}
