import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestService } from './test-service.js';

/** Small real files of the types the tests send. */
export const files = {
  /** A 1×1 PNG a browser draws. */
  png: Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64'),
  pdf: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n'),
  /** An executable: no type on the allow-list. */
  elf: Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]), Buffer.alloc(64)]),
  html: Buffer.from('<!doctype html><script>alert(document.domain)</script>'),
};

/** A fresh directory for the `disk` store of one test service. */
export async function diskStoreSettings(): Promise<Record<string, unknown>> {
  return { 'attachments.store': 'disk', 'attachments.dir': await mkdtemp(join(tmpdir(), 'handover-attachments-')) };
}

/**
 * Uploads bytes as a client would (raw body, its declared type), over real HTTP; the answer is checked
 * against the OpenAPI document like every answer `t.api()` gets.
 */
export async function upload(
  t: TestService,
  path: string,
  options: { token: string; bytes: Buffer; type?: string; name?: string; headers?: Record<string, string> },
) {
  const url = `${path}${options.name === undefined ? '' : `?name=${encodeURIComponent(options.name)}`}`;
  const res = await fetch(`${t.url}${url}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.token}`, 'content-type': options.type ?? 'application/octet-stream', ...options.headers },
    body: options.bytes,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  const problems = t.contract?.check({ method: 'POST', path: url, status: res.status, headers: res.headers, body: text }) ?? [];
  if (problems.length > 0) throw new Error(`The answer does not match the OpenAPI document:\n${problems.join('\n')}`);
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

/** Fetches a file (a signed link, or the bot's route with its key); the answer is checked against the document. */
export async function download(t: TestService, url: string, token?: string) {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(15_000) });
  const bytes = Buffer.from(await res.arrayBuffer());
  const path = url.startsWith(t.url) ? url.slice(t.url.length) : new URL(url).pathname + new URL(url).search;
  const problems =
    t.contract?.check({
      method: 'GET',
      path,
      status: res.status,
      headers: res.headers,
      body: res.headers.get('content-type')?.startsWith('application/json') ? bytes.toString() : '',
    }) ?? [];
  if (problems.length > 0) throw new Error(`The answer does not match the OpenAPI document:\n${problems.join('\n')}`);
  return {
    status: res.status,
    bytes,
    headers: res.headers,
    json: res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(bytes.toString()) : null,
  };
}
