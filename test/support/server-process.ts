import { spawn, type ChildProcess } from 'node:child_process';
import type { ApiResponse } from './test-service.js';

/** A `handover start` in a child process of its own, as in production: for kill and signal tests. */
export interface ServerProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  api<T = any>(method: string, path: string, options?: { token?: string; body?: unknown }): Promise<ApiResponse<T>>;
  exited: Promise<number | null>;
}

export async function startServerProcess(env: Record<string, string>, timeoutMs = 45_000): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    // Fakes listen on loopback over http: allowed here, refused by default with DATABASE_URL.
    env: {
      ...process.env,
      PORT: '0',
      HANDOVER_LOG_LEVEL: 'info',
      HANDOVER_ALLOW_PRIVATE_URLS: 'true',
      HANDOVER_ALLOW_HTTP_URLS: 'true',
      HANDOVER_SECRET_KEYS: `test-1:${Buffer.alloc(32, 7).toString('base64')}`,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const check = () => {
      const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout!.off('data', check);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  const api: ServerProcess['api'] = async (method, path, opts = {}) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      body: opts.body !== undefined ? JSON.stringify(opts.body) : null,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as any, headers: res.headers };
  };
  return { child, url, output: () => out, api, exited };
}
