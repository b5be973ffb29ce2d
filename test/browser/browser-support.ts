import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../support/ports.js';
import type { DbKind } from '../support/test-db.js';

/** Screenshots and other outputs of the browser tests (gitignored). */
export const artifactsDir = new URL('../../test-artifacts/', import.meta.url).pathname;

/**
 * The stores a browser flow runs on. What the desk shows does not depend on the store under the API,
 * and every desk operation runs on both stores in the API suites (test/desk, test/e2e); so each flow
 * runs on one store here — the files pick different ones, so both are driven through a browser — and
 * HANDOVER_TEST_BROWSER_STORES=both runs every flow on both.
 */
export function browserStores(store: DbKind): DbKind[] {
  return process.env.HANDOVER_TEST_BROWSER_STORES === 'both' ? ['pglite', 'pg'] : [store];
}

export async function launchChromium(): Promise<Browser> {
  await mkdir(artifactsDir, { recursive: true });
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 30_000,
  });
}

/** Collects uncaught errors and alert() calls of a page: a test fails on either. */
export function watchPage(page: Page, problems: string[], name: string): void {
  page.on('pageerror', (err) => problems.push(`${name}: uncaught ${err.message}`));
  page.on('dialog', (dialog) => {
    problems.push(`${name}: a dialog opened (${dialog.type()}: ${dialog.message()}) — markup was executed`);
    void dialog.dismiss();
  });
  page.on('response', (res) => {
    if (res.status() >= 400) trail.push(`${name}: ${res.request().method()} ${res.url()} → ${res.status()}`);
  });
  page.on('requestfailed', (req) => trail.push(`${name}: ${req.method()} ${req.url()} failed: ${req.failure()?.errorText}`));
  page.on('console', (msg) => trail.push(`${name}: console.${msg.type()} ${msg.text()}`));
  page.setDefaultTimeout(15_000);
}

/** Signs in to the desk at `baseUrl` (a service's root URL) as the console does, and waits until it is live. */
export async function signInToDesk(page: Page, baseUrl: string, who: { email: string; password: string }): Promise<void> {
  await page.goto(`${baseUrl}/desk`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#connection[data-state="live"]').waitFor();
}

/** What the pages did that a failed test may want to show (kept with the failure screenshots). */
const trail: string[] = [];

/** Screenshots of every page and the server's output when a test fails, to see what happened. */
export async function keepFailureScreenshots(test: string, pages: Record<string, Page | undefined>, handover?: HandoverProcess): Promise<void> {
  if (handover) await writeFile(join(artifactsDir, `failed-${test}-server.log`), handover.output()).catch(() => {});
  await writeFile(join(artifactsDir, `failed-${test}-pages.log`), trail.join('\n')).catch(() => {});
  for (const [name, page] of Object.entries(pages)) {
    await page?.screenshot({ path: join(artifactsDir, `failed-${test}-${name}.png`), timeout: 5000 }).catch(() => {});
  }
}

export { freePort };

export interface HandoverProcess {
  url: string;
  deskUrl: string;
  demoUrl: string;
  agent: { email: string; password: string };
  /** The admin API, with the token the embedded store generated in its data directory. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** Its data directory (the admin token is kept there, where the CLI finds it with HANDOVER_DATA_DIR). */
  dataDir: string;
  output(): string;
  /** Stops it (SIGTERM), runs `whileStopped`, and starts it again on the same data and ports. */
  restart(whileStopped?: () => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `handover start` as `npm start` runs it (from source, embedded store, demo on by default), in a fresh
 * data directory. Everything the test needs is read from the start banner, as a user would.
 */
export async function startHandover(timeoutMs = 45_000): Promise<HandoverProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), 'handover-browser-'));
  const [port, demoPort] = [await freePort(), await freePort()];
  let out = '';
  let running: Awaited<ReturnType<typeof launch>>;
  try {
    running = await launch({ dataDir, port, demoPort, timeoutMs, onOutput: (text) => (out += text) });
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const stopRunning = async () => {
    const { child, exited } = running;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  const url = `http://localhost:${port}`;
  return {
    url,
    deskUrl: `${url}/desk`,
    demoUrl: running.banner[1]!,
    agent: { email: running.banner[2]!, password: running.banner[3]! },
    async admin(method, path, body) {
      const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
      const res = await fetch(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: await res.json().catch(() => null) };
    },
    dataDir,
    output: () => out,
    async restart(whileStopped) {
      await stopRunning();
      await whileStopped?.();
      running = await launch({ dataDir, port, demoPort, timeoutMs, onOutput: (text) => (out += text) });
    },
    async stop() {
      await stopRunning();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function launch(input: {
  dataDir: string;
  port: number;
  demoPort: number;
  timeoutMs: number;
  onOutput(text: string): void;
}): Promise<{ child: ChildProcess; exited: Promise<void>; banner: RegExpExecArray }> {
  const { dataDir, port, demoPort, timeoutMs } = input;
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    env: {
      ...process.env,
      PORT: String(port),
      HANDOVER_DEMO_PORT: String(demoPort),
      HANDOVER_DATA_DIR: dataDir,
      HANDOVER_LOG_LEVEL: 'warn',
      HANDOVER_ADMIN_TOKEN: '',
      DATABASE_URL: '',
      HANDOVER_DEMO: '',
      // As for every functional test (test/support/test-service.ts): the browser, the service and two test
      // workers share two cores, and a loop that waits for a core looks busy. Without this the loop-share
      // cap refused the demo page's own script and stylesheet (parallel requests of one caller) in CI.
      HANDOVER_EVENT_LOOP_UTILIZATION_LIMIT: '1',
      HANDOVER_EVENT_LOOP_DELAY_LIMIT_MS: '60000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (chunk: Buffer) => {
    out += chunk.toString();
    input.onOutput(chunk.toString());
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const banner = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not left running: nobody would stop it, and it would go on taking CPU from the files after.
      child.kill('SIGKILL');
      reject(new Error(`handover did not start within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const check = () => {
      const match = /demo:\s+(http:\/\/\S+\/demo)[\s\S]*?demo agent:\s+(\S+) \/ (\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match);
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`handover exited before it started:\n${out}`));
    });
  });
  return { child, exited, banner };
}

/** A TCP proxy the test can cut, to play a network drop between a browser and the server. */
export interface CuttableProxy {
  url: string;
  /** Drops every open connection and refuses new ones until restore(). */
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<CuttableProxy> {
  const sockets = new Set<Socket>();
  let down = false;
  const server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    restore() {
      down = false;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
