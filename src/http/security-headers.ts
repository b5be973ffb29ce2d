import type { FastifyInstance } from 'fastify';

/**
 * A page that sets no policy of its own gets this one: nothing loads, nothing frames it. The desk, the
 * demo and the status page set narrower-than-default policies for what they load; the API docs have
 * their own (`docsContentSecurityPolicy`).
 */
const fallbackPolicy = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * Swagger UI at `/docs`: its scripts are files of its own (no inline script), it reads the OpenAPI
 * document from this origin, and shows data: images (its icons). Styles may be inline because Swagger
 * UI adds `<style>` elements as it renders (Chromium refuses them otherwise); scripts may not. The
 * validator badge (validator.swagger.io) is off, so nothing leaves the origin.
 */
export const docsContentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "script-src-attr 'none'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Every answer says `nosniff` (a JSON error can never be taken for a script or a page), and every HTML
 * page carries a Content-Security-Policy with `frame-ancestors 'none'` (and `X-Frame-Options: DENY`
 * for browsers that read only that) and no referrer, whichever route served it: a page added later
 * cannot forget them. An API answer (JSON) is never stored by a cache on the way (`no-store`): some
 * carry credentials (a session token, a new API key, a tenant's webhook secret), and none is meant to
 * be served again.
 */
export function installSecurityHeaders(app: FastifyInstance): void {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('text/html')) {
      if (!reply.hasHeader('content-security-policy')) reply.header('content-security-policy', fallbackPolicy);
      if (!reply.hasHeader('referrer-policy')) reply.header('referrer-policy', 'no-referrer');
      if (!reply.hasHeader('x-frame-options')) reply.header('x-frame-options', 'DENY');
    } else if (typeof type === 'string' && type.startsWith('application/json') && !reply.hasHeader('cache-control')) {
      reply.header('cache-control', 'no-store');
    }
    return payload;
  });
}
