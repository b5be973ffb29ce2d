import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config/config.js';
import { AppError } from '../../resilience/errors.js';

/**
 * The browser pages: the agent console at `/desk` and, when the demo is on, the chat widget at `/demo`.
 * They are plain files in `web/` at the package root (no build step). `web/` is not copied into
 * `dist/`: this file sits three folders below the root both as `src/http/routes/*.ts` and as
 * `dist/http/routes/*.js`, so the same relative path finds it from either.
 */
export const webRoot = fileURLToPath(new URL('../../../web/', import.meta.url));

const contentTypes: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  ico: 'image/x-icon',
};

/** Plain file names only: no folders, no leading dot, so a request can never leave its page's folder. */
const FILE_NAME = /^[a-z0-9][a-z0-9-]*\.(html|js|css|svg|png|ico)$/;
const HOSTNAME = /^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/;

/**
 * Scripts and styles come from files only (no inline code), so the pages run under a policy without
 * 'unsafe-inline'. The widget also talks to the demo bot, which listens on its own port.
 */
function contentSecurityPolicy(connectSrc: string): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connectSrc}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function webRoutes(config: Config): FastifyPluginAsync {
  return async (app) => {
    const pages = config.demo.enabled ? (['desk', 'demo'] as const) : (['desk'] as const);

    const send = async (request: FastifyRequest, reply: FastifyReply, page: (typeof pages)[number], file: string) => {
      const match = FILE_NAME.exec(file);
      if (!match) throw new AppError('not_found', { message: `No file ${file} in /${page}.` });
      let body: Buffer;
      try {
        body = await readFile(join(webRoot, page, file));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new AppError('not_found', { message: `No file ${file} in /${page}.` });
        throw err;
      }
      let connectSrc = "'self'";
      if (page === 'demo') {
        const host = HOSTNAME.test(request.hostname) ? request.hostname : 'localhost';
        connectSrc += ` http://${host}:${config.demo.port}`;
      }
      return reply
        .header('content-type', contentTypes[match[1]!])
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'no-referrer')
        .header('content-security-policy', contentSecurityPolicy(connectSrc))
        .send(body);
    };

    // The pages and their files are exempt from admission control, as health and metrics are: each is
    // one read of a small file, with no database and no work behind it. A browser asks for them all at
    // once (the desk: two stylesheets, app.js and the 13 modules it imports), from one address; with
    // the adaptive limit at its floor on a busy machine they waited past the queue bound and some were
    // refused `overloaded_queue_wait`, and a desk missing one module does not start at all. The pages'
    // API calls are admitted as any other.
    const route = { schema: { hide: true }, config: { admission: 'exempt' as const } };
    for (const page of pages) {
      const index = (request: FastifyRequest, reply: FastifyReply) => send(request, reply, page, 'index.html');
      app.get(`/${page}`, route, index);
      app.get(`/${page}/`, route, index);
      app.get<{ Params: { file: string } }>(`/${page}/:file`, route, (request, reply) => send(request, reply, page, request.params.file));
    }

    if (config.demo.enabled) {
      // The widget finds the demo bot on the same host name, on the bot's port (known only once it listens).
      app.get('/demo/config.json', route, async (_request, reply) => reply.header('cache-control', 'no-store').send({ botPort: config.demo.port }));
    }
  };
}
