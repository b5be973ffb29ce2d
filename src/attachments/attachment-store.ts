/**
 * Where attachment bytes are kept: the port. Two adapters, chosen by HANDOVER_ATTACHMENT_STORE: a
 * directory (`disk-store.ts`, the embedded store's default) and an S3-compatible bucket
 * (`s3-store.ts`). Keys are `<tenant id>/<attachment id>`: ids this service made, never a client's text.
 * Every call is bounded in time; a store that cannot answer throws `attachment_store_unavailable`.
 */
export interface AttachmentStore {
  readonly kind: 'disk' | 's3';
  put(key: string, bytes: Buffer, contentType: string): Promise<void>;
  /** The bytes, or null when the key holds nothing. */
  get(key: string): Promise<Buffer | null>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
