import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { AttachmentStore } from './attachment-store.js';
import { AppError } from '../resilience/errors.js';

export interface S3Settings {
  bucket: string;
  /** An S3-compatible service's URL (MinIO, Ceph, R2, …); unset: AWS's own for the region. */
  endpoint: string | undefined;
  region: string;
  accessKeyId: string | undefined;
  secretAccessKey: string | undefined;
  forcePathStyle: boolean;
  timeoutMs: number;
}

/**
 * Attachments in an S3-compatible bucket through the AWS SDK (v3). The SDK makes its own HTTP calls:
 * it is the one client that does not go through src/outbound, because the bucket is the operator's
 * own store named in the settings (never a tenant's URL) and requests must be signed the SDK's way.
 * Every call is bounded: connect and response timeouts on the SDK's handler, and an abort after
 * `timeoutMs` on the whole call, retries included (at most one retry).
 * Credentials: the settings' key pair, or else the SDK's default chain (its environment variables, an
 * instance or pod role).
 */
export function createS3Store(settings: S3Settings): AttachmentStore {
  const client = new S3Client({
    region: settings.region,
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    forcePathStyle: settings.forcePathStyle,
    ...(settings.accessKeyId && settings.secretAccessKey
      ? { credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } }
      : {}),
    maxAttempts: 2,
    requestHandler: { connectionTimeout: Math.min(settings.timeoutMs, 3000), requestTimeout: settings.timeoutMs },
  });
  const bounded = () => ({ abortSignal: AbortSignal.timeout(settings.timeoutMs) });
  const unavailable = (err: unknown) =>
    new AppError('attachment_store_unavailable', { message: `The attachment bucket did not answer as expected: ${describe(err)}.`, cause: err });
  return {
    kind: 's3',
    async put(key, bytes, contentType) {
      try {
        await client.send(
          new PutObjectCommand({ Bucket: settings.bucket, Key: key, Body: bytes, ContentType: contentType, ContentLength: bytes.length }),
          bounded(),
        );
      } catch (err) {
        throw unavailable(err);
      }
    },
    async get(key) {
      const signal = bounded();
      try {
        const answer = await client.send(new GetObjectCommand({ Bucket: settings.bucket, Key: key }), signal);
        if (!answer.Body) return null;
        return Buffer.from(await answer.Body.transformToByteArray());
      } catch (err) {
        if (isMissing(err)) return null;
        throw unavailable(err);
      }
    },
    async delete(key) {
      try {
        await client.send(new DeleteObjectCommand({ Bucket: settings.bucket, Key: key }), bounded());
      } catch (err) {
        if (!isMissing(err)) throw unavailable(err);
      }
    },
    async close() {
      client.destroy();
    },
  };
}

function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return `${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}${e.message ? `: ${e.message.slice(0, 200)}` : ''}`;
}
