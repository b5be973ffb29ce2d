import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pollUntil } from './ports.js';

export interface S3Server {
  url: string;
  bucket: string;
  /** The service's settings that point its attachment store at this server. */
  settings: Record<string, unknown>;
  /** Stops the process (SIGKILL when `kill`: a store that vanishes mid-run). */
  stop(options?: { kill?: boolean }): Promise<void>;
}

/**
 * A local process speaking the S3 API (s3rver, from npm), on a free loopback port, with one bucket and
 * its own data directory: the object store of the `s3` attachment tests, reached through the AWS SDK
 * exactly as a real bucket would be.
 */
export async function startS3Server(bucket = 'handover-attachments'): Promise<S3Server> {
  const dir = await mkdtemp(join(tmpdir(), 'handover-s3-'));
  const port = await freePort();
  const bin = createRequire(import.meta.url).resolve('s3rver/bin/s3rver.js');
  const child: ChildProcess = spawn(
    process.execPath,
    [bin, '-d', dir, '-a', '127.0.0.1', '-p', String(port), '--silent', '--no-vhost-buckets', '--configure-bucket', bucket],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  await pollUntil(
    async () => {
      if (child.exitCode !== null) throw new Error('exited');
      const res = await fetch(`${url}/${bucket}`, { method: 'HEAD', signal: AbortSignal.timeout(1000) });
      // Any S3 answer about the bucket (403 without a signature) says it is up with the bucket made.
      if (res.status >= 500) throw new Error(`answered ${res.status}`);
    },
    { timeoutMs: 20_000, intervalMs: 100, what: `s3rver did not start on ${url}:\n${output}` },
  );
  return {
    url,
    bucket,
    settings: {
      'attachments.store': 's3',
      'attachments.s3.bucket': bucket,
      'attachments.s3.endpoint': url,
      'attachments.s3.region': 'us-east-1',
      'attachments.s3.accessKeyId': 'S3RVER',
      'attachments.s3.secretAccessKey': 'S3RVER',
      'attachments.s3.forcePathStyle': true,
      'attachments.s3.timeoutMs': 3000,
    },
    async stop(options = {}) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(options.kill ? 'SIGKILL' : 'SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
