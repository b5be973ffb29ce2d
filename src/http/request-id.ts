import type { IncomingMessage } from 'node:http';

/**
 * A caller's `X-Request-Id`, taken as the request's id in logs and traces when it is a plain token of
 * at most 128 characters (letters, digits, `.`, `_`, `:`, `-`); anything else (16 KB of text, line
 * breaks, quotes) is not taken, and the request gets an id of the service's own.
 */
export function givenRequestId(request: IncomingMessage): string | undefined {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : undefined;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
