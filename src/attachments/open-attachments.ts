import type { Config } from '../config/config.js';
import type { SecretKey } from '../config/secret-box.js';
import type { AttachmentService } from './attachment-service.js';
import { createDiskStore } from './disk-store.js';
import { AttachmentLinks } from './signed-links.js';

/**
 * The attachment store the settings name, with its link signer; undefined when attachments are off.
 * The AWS SDK is loaded only for the `s3` store (it takes about 0.3 s to load, which a start on the
 * disk store need not pay).
 */
export async function openAttachments(config: Config, keys: SecretKey[], currentKeyId: string): Promise<AttachmentService | undefined> {
  const settings = config.attachments;
  if (settings.store === 'off') return undefined;
  const store =
    settings.store === 's3'
      ? (await import('./s3-store.js')).createS3Store({ ...settings.s3, bucket: settings.s3.bucket!, endpoint: settings.s3.endpoint })
      : createDiskStore(settings.dir);
  return {
    store,
    links: new AttachmentLinks(keys, currentKeyId, settings.linkTtlSeconds),
    maxBytes: settings.maxBytes,
    helpdeskLinkTtlSeconds: settings.helpdeskLinkTtlSeconds,
    types: settings.types,
  };
}
