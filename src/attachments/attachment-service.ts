import type { AttachmentStore } from './attachment-store.js';
import type { AttachmentLinks } from './signed-links.js';

/**
 * Attachments kept by the service (docs/desk.md, "Attachments"): a file is uploaded on its own —
 * bounded in size, its type read from its bytes and checked against the allow-list — and then sent
 * in a message by its id. Whoever reads the message gets a link signed for a short time; the file is
 * served only through such links (or to the bot's API key), never from a URL anyone can guess.
 */
export interface AttachmentService {
  store: AttachmentStore;
  links: AttachmentLinks;
  maxBytes: number;
  /** Lifetime of the links given to an external helpdesk (HANDOVER_ATTACHMENT_HELPDESK_LINK_TTL_SECONDS). */
  helpdeskLinkTtlSeconds: number;
  /** The allowed types (HANDOVER_ATTACHMENT_TYPES), as sniffed from the bytes. */
  types: ReadonlySet<string>;
}
