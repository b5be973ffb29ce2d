import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { setUpDesk, startTestService, type DeskSetup, type TestService } from '../support/test-service.js';
import { download, files, upload } from '../support/attachment-files.js';
import { startS3Server, type S3Server } from '../support/s3-server.js';

/**
 * The `s3` attachment store against a local process speaking the S3 API (s3rver), through the AWS SDK:
 * a file goes into the bucket under its tenant, comes back through its signed link, and a bucket that
 * stops answering is a bounded `503 attachment_store_unavailable`, never a hang or a 500.
 */
describe('attachments in an S3 bucket', () => {
  let s3: S3Server;
  let t: TestService;
  let desk: DeskSetup;
  let handoverId: string;

  beforeAll(async () => {
    s3 = await startS3Server();
    t = await startTestService('pg', s3.settings);
    desk = await setUpDesk(t);
    const created = await t.api('POST', '/v1/handovers', {
      token: desk.apiKey,
      body: { conversationId: 'att-s3', queue: 'support', user: { id: 'u-1', name: 'Uma' } },
    });
    handoverId = created.body.id;
    await t.api('POST', `/v1/desk/handovers/${handoverId}/accept`, { token: desk.agentToken });
  }, 60_000);

  afterAll(async () => {
    desk?.console?.close();
    await t?.close();
    await s3?.stop();
  }, 30_000);

  it('keeps the file in the bucket and serves it through its signed link', async () => {
    const sent = await upload(t, `/v1/desk/handovers/${handoverId}/attachments`, {
      token: desk.agentToken,
      bytes: files.pdf,
      type: 'application/pdf',
      name: 'invoice.pdf',
    });
    expect(sent.status).toBe(201);
    // In the bucket, under the tenant, with its type.
    const client = new S3Client({
      endpoint: s3.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      const object = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${desk.tenantId}/${sent.body.id}` }), {
        abortSignal: AbortSignal.timeout(5000),
      });
      expect(object.ContentType).toBe('application/pdf');
      expect(Buffer.from(await object.Body!.transformToByteArray()).equals(files.pdf)).toBe(true);
    } finally {
      client.destroy();
    }
    const got = await download(t, sent.body.url);
    expect(got.status).toBe(200);
    expect(got.bytes.equals(files.pdf)).toBe(true);
    expect(got.headers.get('content-disposition')).toMatch(/^attachment; /);
  });

  it('answers 503 attachment_store_unavailable within its bound when the bucket is gone', async () => {
    const before = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'a.png' });
    expect(before.status).toBe(201);
    await s3.stop({ kill: true });
    const started = Date.now();
    const failed = await upload(t, `/v1/handovers/${handoverId}/attachments`, { token: desk.apiKey, bytes: files.png, type: 'image/png', name: 'b.png' });
    expect(failed.status).toBe(503);
    expect(failed.body.error.code).toBe('attachment_store_unavailable');
    expect(failed.headers.get('retry-after')).not.toBeNull();
    const read = await download(t, before.body.url);
    expect(read.status).toBe(503);
    expect(read.json.error.code).toBe('attachment_store_unavailable');
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
