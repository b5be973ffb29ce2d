import type { Config } from '../config/config.js';
import type { SecretKey } from '../connectors/secret-box.js';
import type { AttachmentService } from './attachments.js';
import { createDiskStore } from './disk-store.js';
import { createS3Store } from './s3-store.js';
import { AttachmentLinks } from './signed-links.js';

/** The attachment store the settings name, with its link signer; undefined when attachments are off. */
export function openAttachments(config: Config, keys: SecretKey[], currentKeyId: string): AttachmentService | undefined {
  const settings = config.attachments;
  if (settings.store === 'off') return undefined;
  const store =
    settings.store === 's3'
      ? createS3Store({ ...settings.s3, bucket: settings.s3.bucket!, endpoint: settings.s3.endpoint })
      : createDiskStore(settings.dir);
  return { store, links: new AttachmentLinks(keys, currentKeyId, settings.linkTtlSeconds), maxBytes: settings.maxBytes, types: settings.types };
}
