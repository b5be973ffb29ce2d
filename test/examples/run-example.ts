import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eventually } from '../support/test-service.js';

export interface RunningExample {
  child: ChildProcessWithoutNullStreams;
  /** Everything it printed, line by line. */
  lines: string[];
  /** Waits for a printed line that matches. */
  waitForLine(match: RegExp, what?: string): Promise<string>;
  stop(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Runs an example as a user would (`node examples/…`), in its own process. With the client and the
 * middleware from source (tsx, `--conditions=development`), so the tests need no build.
 */
export function runExample(file: string, env: Record<string, string>): RunningExample {
  const child = spawn(process.execPath, ['--conditions=development', '--import', 'tsx', file], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const errors: string[] = [];
  let rest = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => errors.push(chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    lines,
    waitForLine: (match, what) =>
      eventually(
        async () => {
          if (child.exitCode !== null) throw new Error(`${file} exited (${child.exitCode}): ${errors.join('')}`);
          return lines.find((line) => match.test(line));
        },
        what ?? `a line matching ${match} from ${file} (so far: ${JSON.stringify(lines)}; stderr: ${errors.join('')})`,
      ),
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** A port nothing listens on now, for an example that listens. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
