import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../../deps.js';
import { readByLink, readForTenant, uploadAttachment, type StoredAttachment } from '../../attachments/attachments.js';
import { inlineImageTypes } from '../../attachments/sniff.js';
import { findHandover } from '../../handover/queries.js';
import { assertHeldBy } from '../../handover/rules.js';
import { assertDeskVisible } from '../../desk/visibility.js';
import type { ApiKeyIdentity } from '../../tenants/tenants.js';
import { AppError } from '../../resilience/errors.js';
import { botAuth, deskAuth } from '../auth.js';
import { IdParams, errorResponses } from '../schemas.js';

export const UploadedAttachmentSchema = Type.Object(
  {
    id: Type.String({ description: 'Send it in a message: `attachments: [{ "id": "att_…" }]`.' }),
    name: Type.String(),
    contentType: Type.String({ description: 'The type read from the bytes (magic numbers).' }),
    size: Type.Integer(),
    url: Type.String({ description: 'A signed link to the file, valid until `expiresAt`.' }),
    expiresAt: Type.String({ format: 'date-time' }),
  },
  { title: 'UploadedAttachment' },
);

const UploadQuery = Type.Object(
  { name: Type.Optional(Type.String({ maxLength: 256, description: 'The file name shown to the other side (folders and control characters are dropped).' })) },
  { additionalProperties: false },
);
const LinkQuery = Type.Object({ expires: Type.Optional(Type.String({ maxLength: 16 })), sig: Type.Optional(Type.String({ maxLength: 64 })) });
const BotFileParams = Type.Object({ id: Type.String({ maxLength: 64 }), attachmentId: Type.String({ maxLength: 64 }) });

/**
 * A file's answer. It must never run in this service's origin, where the desk lives: its type is the
 * one its bytes showed, `nosniff` keeps browsers to it, anything but a plain image is a download, and
 * the policy lets the answer load nothing and sandboxes it should it ever be rendered as a page.
 */
function sendFile(reply: FastifyReply, attachment: StoredAttachment, bytes: Buffer, maxAgeSeconds: number): FastifyReply {
  const inline = inlineImageTypes.has(attachment.contentType);
  const ascii = attachment.name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return reply
    .header('content-type', attachment.contentType.startsWith('text/') ? `${attachment.contentType}; charset=utf-8` : attachment.contentType)
    .header('content-disposition', `${inline ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(attachment.name)}`)
    .header('content-security-policy', "default-src 'none'; sandbox; frame-ancestors 'none'")
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', `private, max-age=${Math.max(0, maxAgeSeconds)}`)
    .send(bytes);
}

/** The request body as bytes: this plugin reads every content type that way (the rest of the API takes JSON only). */
function bodyBytes(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

/** Uploads (desk and bot API), the signed links, and the bot's own read of a file (docs/desk.md, "Attachments"). */
export function attachmentRoutes(deps: Deps, authenticate: (apiKey: string) => Promise<ApiKeyIdentity>): FastifyPluginAsync {
  const maxBytes = deps.config.attachments.maxBytes;
  return async (plugin) => {
    plugin.removeAllContentTypeParsers();
    plugin.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBytes }, (_request, body, done) => done(null, body));
    const uploadSchema = (tags: string[], security: Array<Record<string, string[]>>, summary: string) => ({
      tags,
      security,
      summary,
      params: IdParams,
      querystring: UploadQuery,
      response: { 201: UploadedAttachmentSchema, ...errorResponses },
    });

    await plugin.register(async (scope) => {
      const desk = scope.withTypeProvider<TypeBoxTypeProvider>();
      desk.addHook('onRequest', deskAuth(deps.db, deps.config.desk.sessionIdleSeconds));
      desk.post(
        '/v1/desk/handovers/:id/attachments',
        { bodyLimit: maxBytes, schema: uploadSchema(['Desk API'], [{ deskSession: [] }], 'Upload a file to send in a chat you hold') },
        async (request, reply) => {
          const handover = await findHandover(deps.db, request.agent.tenantId, request.params.id);
          assertDeskVisible(request.agent, handover);
          if (handover.state === 'ended') throw new AppError('handover_ended');
          assertHeldBy(handover, request.agent.id);
          const uploaded = await uploadAttachment(deps, {
            handover,
            uploadedBy: { type: 'agent', id: request.agent.id, name: request.agent.name },
            name: request.query.name,
            declaredType: request.headers['content-type'],
            bytes: bodyBytes(request),
          });
          return reply.code(201).send(uploaded);
        },
      );
    });

    await plugin.register(async (scope) => {
      const bot = scope.withTypeProvider<TypeBoxTypeProvider>();
      bot.addHook('onRequest', botAuth(authenticate));
      bot.post(
        '/v1/handovers/:id/attachments',
        { bodyLimit: maxBytes, schema: uploadSchema(['Bot API'], [{ apiKey: [] }], "Upload the user's file, to send in a message") },
        async (request, reply) => {
          const handover = await findHandover(deps.db, request.tenantId, request.params.id);
          const uploaded = await uploadAttachment(deps, {
            handover,
            uploadedBy: { type: 'bot' },
            name: request.query.name,
            declaredType: request.headers['content-type'],
            bytes: bodyBytes(request),
          });
          return reply.code(201).send(uploaded);
        },
      );
      bot.get(
        '/v1/handovers/:id/attachments/:attachmentId',
        {
          schema: {
            tags: ['Bot API'],
            security: [{ apiKey: [] }],
            summary: "A file of one of the handover's messages, for the bot's own key (when its link has expired)",
            params: BotFileParams,
            response: { 200: Type.String(), ...errorResponses },
          },
        },
        async (request, reply) => {
          // Another tenant's handover is unknown, whatever the file id.
          await findHandover(deps.db, request.tenantId, request.params.id);
          const { attachment, bytes } = await readForTenant(deps, {
            tenantId: request.tenantId,
            handoverId: request.params.id,
            id: request.params.attachmentId,
          });
          return sendFile(reply, attachment, bytes, 0);
        },
      );
    });

    const app = plugin.withTypeProvider<TypeBoxTypeProvider>();
    app.get(
      '/v1/attachments/:id',
      {
        schema: {
          tags: ['Attachments'],
          summary: 'A file, through the signed link a message carries',
          params: IdParams,
          querystring: LinkQuery,
          response: { 200: Type.String(), ...errorResponses },
        },
      },
      async (request, reply) => {
        const { attachment, bytes } = await readByLink(deps, { id: request.params.id, expires: request.query.expires, sig: request.query.sig });
        const left = Number(request.query.expires) - Math.floor(deps.now().getTime() / 1000);
        return sendFile(reply, attachment, bytes, left);
      },
    );
  };
}
