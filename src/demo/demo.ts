import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import type { Logger } from '../telemetry/logger.js';
import { DEMO_FILE, provisionDemo } from './provision-demo.js';

/**
 * The demo that `handover start` runs in embedded mode (HANDOVER_DEMO): a demo tenant with a queue and an
 * agent, the example bot of `examples/demo-bot/` in its own process, and the widget at `/demo`. The bot
 * is started exactly as a user would run it (an API key and a URL, nothing else shared), so the demo
 * proves the public API rather than a shortcut around it.
 */
export interface Demo {
  url: string;
  botUrl: string;
  agent: { email: string; password: string };
  credentialsFile: string;
  stop(): Promise<void>;
}

/** The example bot, from the package root (the same relative path from src/demo and dist/demo). */
const botEntry = fileURLToPath(new URL('../../examples/demo-bot/demo-bot.js', import.meta.url));
/**
 * The bot uses the client library (`#handover-client`): its build when this runs from dist/, its source
 * (through tsx, as this process runs) when this runs from src/, so `npm run dev` needs no build.
 */
const botLoader = import.meta.url.endsWith('.ts') ? ['--conditions=development', '--import', 'tsx'] : [];
const BOT_START_TIMEOUT_MS = 15_000;
const BOT_STOP_TIMEOUT_MS = 3_000;

export async function startDemo(input: { app: FastifyInstance; config: Config; adminToken: string; address: string; log: Logger }): Promise<Demo> {
  const { app, config, address } = input;
  const log = input.log.child({ part: 'demo' });
  const credentials = await provisionDemo(app, input.adminToken, config.database.dataDir);

  const port = new URL(address).port;
  const origins = new Set([new URL(config.publicUrl).origin, `http://localhost:${port}`, `http://127.0.0.1:${port}`, `http://[::1]:${port}`]);
  // Only what the bot needs: it must not see the admin token or the database settings.
  const env = {
    HANDOVER_URL: address,
    HANDOVER_API_KEY: credentials.apiKey,
    HANDOVER_QUEUE: credentials.queue,
    HOST: config.host,
    PORT: String(config.demo.port),
    ALLOWED_ORIGINS: [...origins].join(','),
  };
  const child = spawn(process.execPath, [...botLoader, botEntry], { env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  // The IPC channel only tells the bot when handover is gone (even after SIGKILL); it must not keep us alive.
  child.channel?.unref();
  let running = false; // started and not being stopped: an exit now is worth an error line
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', (code, signal) => {
    if (running) log.error({ code, signal }, 'the demo bot stopped; /demo will not answer until handover restarts');
  });

  const botUrl = await new Promise<string>((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`the demo bot did not start within ${BOT_START_TIMEOUT_MS} ms: ${stderr}`)), BOT_START_TIMEOUT_MS);
    forwardLines(
      child,
      (line) => {
        const match = /listening on (http:\/\/\S+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
        log.debug({ bot: line }, 'demo bot');
      },
      (line) => {
        stderr += `${line}\n`;
        log.warn({ bot: line }, 'demo bot');
      },
    );
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo bot exited with ${code}: ${stderr.trim()}`));
    });
  }).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  running = true;
  // The widget page asks /demo/config.json for the bot's port; with HANDOVER_DEMO_PORT=0 it is known only now.
  config.demo.port = Number(new URL(botUrl).port);
  log.info({ botUrl }, 'demo bot started');

  return {
    url: `${config.publicUrl}/demo`,
    botUrl,
    agent: { email: credentials.agentEmail, password: credentials.agentPassword },
    credentialsFile: `${config.database.dataDir}/${DEMO_FILE}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      running = false;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), BOT_STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

function forwardLines(child: ChildProcess, onStdout: (line: string) => void, onStderr: (line: string) => void): void {
  for (const [stream, fn] of [
    [child.stdout, onStdout],
    [child.stderr, onStderr],
  ] as const) {
    let buffer = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      buffer += chunk;
      let end;
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).trimEnd();
        buffer = buffer.slice(end + 1);
        if (line) fn(line);
      }
    });
  }
}
