import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHandover, type HandoverProcess } from '../browser/browser-support.js';

/**
 * The README's "Try the API with curl" block, run as written with bash, curl and jq against `handover
 * start` on the embedded store (on a free port instead of 8080, and the CLI from source instead of the
 * build `npx handover` runs), so the README's loop stays true: the lines it says appear do appear.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

function blockAfter(heading: string, fence: string): string {
  const section = readme.indexOf(heading);
  if (section < 0) throw new Error(`README has no "${heading}"`);
  const start = readme.indexOf(`\`\`\`${fence}\n`, section) + fence.length + 4;
  return readme.slice(start, readme.indexOf('```', start));
}

describe("the README's curl loop", () => {
  let handover: HandoverProcess;
  const bin = mkdtempSync(join(tmpdir(), 'readme-bin-'));

  beforeAll(async () => {
    handover = await startHandover();
    // `handover` as the README's `npx handover` runs it, from source.
    writeFileSync(join(bin, 'handover'), `#!/bin/sh\nexec "${process.execPath}" --import tsx "${join(root, 'src/cli/main.ts')}" "$@"\n`);
    chmodSync(join(bin, 'handover'), 0o755);
  }, 60_000);

  afterAll(async () => {
    await handover?.stop();
    rmSync(bin, { recursive: true, force: true });
  }, 30_000);

  it('hands over, relays both ways, ends, and prints what the README says it prints', async () => {
    const port = new URL(handover.url).port;
    const script = blockAfter('## Try the API with curl', 'sh').replaceAll('localhost:8080', `localhost:${port}`).replaceAll('npx handover', 'handover');
    const child = spawn('bash', ['-c', script], {
      cwd: root,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, PORT: port, HANDOVER_DATA_DIR: handover.dataDir, HANDOVER_ADMIN_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    clearTimeout(timer);
    // The background streams, if the block's `kill` missed any.
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // all gone
    }

    expect(code, out).toBe(0);
    const lines = out.split('\n');
    for (const expected of blockAfter('Among the lines it prints', 'text').trim().split('\n')) expect(lines, out).toContain(expected);
  }, 90_000);
});
