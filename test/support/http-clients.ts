import { spawn, spawnSync } from 'node:child_process';
import type { Writable } from 'node:stream';

/**
 * Real HTTP clients in their own processes, as bots and helpdesks run them: Node's fetch (undici), curl
 * and Python's `requests`. Each sends one request and reports what it read: the status and coded body,
 * or the error it failed with instead. The body is a file sent whole with its Content-Length, or bytes the
 * test writes to the client's stdin at its own pace, which the client sends chunked as they come.
 */
export interface ClientRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  /** Sent whole, with Content-Length. */
  bodyFile?: string;
  /** Sent chunked from what the test writes to `stdin` (until it ends it). */
  streamed?: true;
}

export interface ClientAnswer {
  /** The status the client read, or null when it failed without one. */
  status: number | null;
  /** `error.code` of the JSON body it read. */
  code: string | null;
  connection: string | null;
  retryAfter: string | null;
  /** What the client failed with, when it read no answer. */
  error: string | null;
}

export interface ClientRun {
  stdin: Writable;
  answer: Promise<ClientAnswer>;
}

export interface HttpClient {
  name: string;
  start(request: ClientRequest, timeoutMs?: number): ClientRun;
}

const fetchScript = `
import { Readable } from 'node:stream';
import { readFileSync } from 'node:fs';
const spec = JSON.parse(process.argv[1]);
const body = spec.bodyFile ? readFileSync(spec.bodyFile, 'utf8') : spec.streamed ? Readable.toWeb(process.stdin) : undefined;
try {
  const res = await fetch(spec.url, { method: spec.method, headers: spec.headers, body, ...(spec.streamed ? { duplex: 'half' } : {}) });
  const text = await res.text();
  console.log(JSON.stringify({ status: res.status, body: text, connection: res.headers.get('connection'), retryAfter: res.headers.get('retry-after') }));
} catch (err) {
  console.log(JSON.stringify({ error: String(err) + (err.cause ? ' (' + (err.cause.code ?? err.cause.message) + ')' : '') }));
}
process.exit(0);
`;

const pythonScript = `
import json, sys, requests
spec = json.loads(sys.argv[1])
def streamed():
    while True:
        chunk = sys.stdin.buffer.read1(65536)
        if not chunk:
            return
        yield chunk
data = open(spec['bodyFile'], 'rb').read() if spec.get('bodyFile') else streamed() if spec.get('streamed') else None
try:
    res = requests.request(spec['method'], spec['url'], headers=spec.get('headers', {}), data=data, timeout=60)
    print(json.dumps({'status': res.status_code, 'body': res.text, 'connection': res.headers.get('connection'), 'retryAfter': res.headers.get('retry-after')}))
except Exception as err:
    print(json.dumps({'error': repr(err)}))
`;

function answerFrom(out: { status?: number; body?: string; connection?: string | null; retryAfter?: string | null; error?: string }): ClientAnswer {
  let code: string | null = null;
  try {
    code = (JSON.parse(out.body ?? '') as { error?: { code?: string } }).error?.code ?? null;
  } catch {
    // not a coded body
  }
  return { status: out.status ?? null, code, connection: out.connection?.toLowerCase() ?? null, retryAfter: out.retryAfter ?? null, error: out.error ?? null };
}

/** Runs a client process, bounded by `timeoutMs`, and parses the last line it prints. */
function run(command: string, args: string[], timeoutMs: number, parse: (stdout: string, stderr: string, exitCode: number | null) => ClientAnswer): ClientRun {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // The client may stop reading its stdin (it was answered): later writes must not fail the test.
  child.stdin.on('error', () => {});
  const answer = new Promise<ClientAnswer>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      if (exitCode === null)
        return resolve({ status: null, code: null, connection: null, retryAfter: null, error: `${command} did not finish within ${timeoutMs} ms` });
      resolve(parse(stdout, stderr, exitCode));
    });
  });
  return { stdin: child.stdin, answer };
}

function lastJsonLine(stdout: string, stderr: string): ClientAnswer {
  const line = stdout.trim().split('\n').pop() ?? '';
  try {
    return answerFrom(JSON.parse(line) as Parameters<typeof answerFrom>[0]);
  } catch {
    return answerFrom({ error: `no answer printed: ${stdout} ${stderr}`.trim() });
  }
}

export const nodeFetch: HttpClient = {
  name: "Node's fetch",
  start: (request, timeoutMs = 30_000) => run(process.execPath, ['--input-type=module', '-e', fetchScript, JSON.stringify(request)], timeoutMs, lastJsonLine),
};

export const curl: HttpClient = {
  name: 'curl',
  start(request, timeoutMs = 30_000) {
    const args = ['-sS', '--max-time', String(Math.ceil(timeoutMs / 1000)), '-X', request.method, '-w', '\\n@@status %{http_code}\\n@@headers %{header_json}'];
    for (const [name, value] of Object.entries(request.headers ?? {})) args.push('-H', `${name}: ${value}`);
    if (request.bodyFile) args.push('--data-binary', `@${request.bodyFile}`);
    if (request.streamed) args.push('-T', '-');
    args.push(request.url);
    return run('curl', args, timeoutMs + 5_000, (stdout, stderr) => {
      // The body, then the status (000 when none was read), then the answer's headers as JSON.
      const at = stdout.lastIndexOf('\n@@status ');
      const body = stdout.slice(0, Math.max(0, at));
      const status = Number(/@@status (\d+)/.exec(stdout.slice(at))?.[1]);
      let headers: Record<string, string[]> = {};
      try {
        headers = JSON.parse(stdout.slice(stdout.lastIndexOf('\n@@headers ') + 11)) as Record<string, string[]>;
      } catch {
        // no answer
      }
      if (!status) return answerFrom({ error: stderr.trim() || 'no status' });
      return answerFrom({ status, body, connection: headers.connection?.[0] ?? null, retryAfter: headers['retry-after']?.[0] ?? null });
    });
  },
};

/** An interpreter with `requests`: the one on PATH, or Debian's (python3-requests). */
function findPython(): string | null {
  for (const python of ['python3', '/usr/bin/python3']) {
    if (spawnSync(python, ['-c', 'import requests'], { timeout: 10_000 }).status === 0) return python;
  }
  return null;
}

const python = findPython();

export const pythonRequests: HttpClient | null = python
  ? { name: 'Python requests', start: (request, timeoutMs = 30_000) => run(python, ['-c', pythonScript, JSON.stringify(request)], timeoutMs, lastJsonLine) }
  : null;

if (!pythonRequests) {
  // In CI every client must run: .ci/run installs Debian's python3-requests.
  if (process.env.CI === 'true')
    throw new Error('Python requests is missing: the client tests cannot run with it (install Debian package "python3-requests").');
  console.warn(
    '\n!!! Python with `requests` not found: SKIPPING that client in the readable-failure tests. Install it with `apt-get install python3-requests`. !!!\n',
  );
}

/** Every client available here. */
export const httpClients: HttpClient[] = [nodeFetch, curl, ...(pythonRequests ? [pythonRequests] : [])];
