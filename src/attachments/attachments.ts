import type { Deps } from '../deps.js';
import type { Attachment, Handover } from '../model/handover.js';
import { AppError } from '../resilience/errors.js';
import { newId } from '../store/ids.js';
import type { AttachmentService } from './attachment-service.js';
import { settleType, sniffType } from './sniff.js';

/** What reading a stored file and signing its links need (the delivery thread has only these). */
export type FileDeps = Pick<Deps, 'db' | 'config' | 'now' | 'attachments'>;

export interface StoredAttachment {
  id: string;
  tenantId: string;
  handoverId: string;
  name: string;
  contentType: string;
  size: number;
  storageKey: string;
}

interface AttachmentRow {
  id: string;
  tenant_id: string;
  handover_id: string;
  name: string;
  content_type: string;
  size: number;
  storage_key: string;
}

const toStored = (r: AttachmentRow): StoredAttachment => ({
  id: r.id,
  tenantId: r.tenant_id,
  handoverId: r.handover_id,
  name: r.name,
  contentType: r.content_type,
  size: r.size,
  storageKey: r.storage_key,
});

/** The service's attachments, or `attachments_off` when HANDOVER_ATTACHMENT_STORE is `off`. */
export function attachmentService(deps: FileDeps): AttachmentService {
  if (!deps.attachments) throw new AppError('attachments_off');
  return deps.attachments;
}

/** A file name as shown and offered for download: no folders, no control characters, at most 200 characters. */
export function cleanName(name: string | undefined): string {
  const cleaned = (name ?? '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f"\\/]/g, '_')
    .replace(/^[.\s]+/, '')
    .trim()
    .slice(0, 200);
  return cleaned || 'file';
}

export interface UploadInput {
  handover: Handover;
  uploadedBy: { type: 'agent' | 'bot'; id?: string; name?: string };
  name: string | undefined;
  declaredType: string | undefined;
  bytes: Buffer;
}

/** Checks a file's size and type, keeps it in the store, then records it. A row never names a missing file. */
export async function uploadAttachment(
  deps: Deps,
  input: UploadInput,
): Promise<{ id: string; name: string; contentType: string; size: number; url: string; expiresAt: string }> {
  const service = attachmentService(deps);
  const { handover, bytes } = input;
  if (handover.state === 'ended') throw new AppError('handover_ended');
  if (bytes.length === 0) throw new AppError('attachment_empty');
  if (bytes.length > service.maxBytes) throw new AppError('body_too_large', { message: `The file is larger than the limit of ${service.maxBytes} bytes.` });
  const sniffed = sniffType(bytes);
  if (!sniffed || !service.types.has(sniffed)) {
    throw new AppError('attachment_type_not_allowed', {
      message: `Files of this type are not taken${sniffed ? ` (${sniffed})` : ''}; allowed: ${[...service.types].join(', ')}.`,
      details: { detected: sniffed, allowed: [...service.types] },
    });
  }
  const contentType = settleType(sniffed, input.declaredType);
  if (contentType === 'mismatch') {
    throw new AppError('attachment_type_mismatch', {
      message: `The file was declared ${input.declaredType} but its bytes are ${sniffed}.`,
      details: { declared: input.declaredType, detected: sniffed },
    });
  }
  const id = newId('attachment');
  const storageKey = `${handover.tenantId}/${id}`;
  const name = cleanName(input.name);
  await service.store.put(storageKey, bytes, contentType);
  await deps.db.query(
    `insert into attachments (id, tenant_id, handover_id, uploaded_by, name, content_type, size, storage_key)
     values ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)`,
    [id, handover.tenantId, handover.id, JSON.stringify(input.uploadedBy), name, contentType, bytes.length, storageKey],
  );
  const link = signedLink(deps, id);
  return { id, name, contentType, size: bytes.length, url: link.url, expiresAt: link.expiresAt };
}

export function signedLink(deps: FileDeps, id: string, ttlSeconds?: number): { url: string; expiresAt: string } {
  const { path, expiresAt } = attachmentService(deps).links.sign(id, deps.now(), ttlSeconds);
  return { url: `${deps.config.publicUrl}${path}`, expiresAt: expiresAt.toISOString() };
}

/**
 * A message's attachments as given by its sender: files uploaded to this handover, by id, become
 * `{ id, url, name, contentType, size }` with a fresh link; a URL given as is stays as it was. An id
 * that is not a file of this handover is `attachment_not_found`.
 */
export async function resolveAttachments(
  deps: Deps,
  input: { tenantId: string; handoverId: string; attachments: ReadonlyArray<{ id: string } | Attachment> | undefined },
): Promise<Attachment[] | undefined> {
  const given = input.attachments;
  if (!given || given.length === 0) return given ? [] : undefined;
  const ids = given.flatMap((a) => ('url' in a ? [] : [a.id]));
  if (ids.length === 0) return given as Attachment[];
  attachmentService(deps);
  const { rows } = await deps.db.query<AttachmentRow>('select * from attachments where id = any($1) and tenant_id = $2 and handover_id = $3', [
    ids,
    input.tenantId,
    input.handoverId,
  ]);
  const byId = new Map(rows.map((r) => [r.id, toStored(r)]));
  return given.map((a) => {
    if ('url' in a) return a;
    const stored = byId.get(a.id);
    if (!stored) throw new AppError('attachment_not_found', { message: `No file ${a.id} was uploaded to this handover.` });
    return { id: stored.id, url: signedLink(deps, stored.id).url, name: stored.name, contentType: stored.contentType, size: stored.size };
  });
}

/**
 * Stored attachments with links signed now (what a reader of the message gets); others as they are.
 * `for: 'helpdesk'`: links for an external system, which may keep them in a conversation its agents read
 * for days, so they last HANDOVER_ATTACHMENT_HELPDESK_LINK_TTL_SECONDS.
 */
export function withFreshLinks(deps: FileDeps, attachments: Attachment[], options: { for?: 'helpdesk' } = {}): Attachment[] {
  if (!deps.attachments || !attachments.some((a) => a.id)) return attachments;
  const ttl = options.for === 'helpdesk' ? deps.attachments.helpdeskLinkTtlSeconds : undefined;
  return attachments.map((a) => (a.id ? { ...a, url: signedLink(deps, a.id, ttl).url } : a));
}

/** The file a signed link names, once the link verifies: `attachment_link_invalid` / `_expired` (403) otherwise. */
export async function readByLink(
  deps: Deps,
  input: { id: string; expires: string | undefined; sig: string | undefined },
): Promise<{ attachment: StoredAttachment; bytes: Buffer }> {
  const service = attachmentService(deps);
  service.links.verify(input.id, input.expires, input.sig, deps.now());
  const { rows } = await deps.db.query<AttachmentRow>('select * from attachments where id = $1', [input.id]);
  return read(service, rows[0]);
}

/** A file of one of the tenant's handovers, for the bot's own API key. */
export async function readForTenant(
  deps: FileDeps,
  input: { tenantId: string; handoverId: string; id: string },
): Promise<{ attachment: StoredAttachment; bytes: Buffer }> {
  const service = attachmentService(deps);
  const { rows } = await deps.db.query<AttachmentRow>('select * from attachments where id = $1 and tenant_id = $2 and handover_id = $3', [
    input.id,
    input.tenantId,
    input.handoverId,
  ]);
  return read(service, rows[0]);
}

async function read(service: AttachmentService, row: AttachmentRow | undefined): Promise<{ attachment: StoredAttachment; bytes: Buffer }> {
  if (!row) throw new AppError('attachment_not_found');
  const attachment = toStored(row);
  const bytes = await service.store.get(attachment.storageKey);
  if (!bytes) throw new AppError('attachment_not_found', { message: 'The file is no longer kept.' });
  return { attachment, bytes };
}

/**
 * A kept file's bytes for a connector whose system takes files (Chatwoot, Salesforce): by id, within
 * the handover it was uploaded to; null when it is not (or no longer) kept.
 */
export async function readAttachmentFile(
  deps: FileDeps,
  input: { tenantId: string; handoverId: string; id: string },
): Promise<{ name: string; contentType: string; bytes: Buffer } | null> {
  try {
    const { attachment, bytes } = await readForTenant(deps, input);
    return { name: attachment.name, contentType: attachment.contentType, bytes };
  } catch (err) {
    if (err instanceof AppError && err.code === 'attachment_not_found') return null;
    throw err;
  }
}
