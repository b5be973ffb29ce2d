import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeFolderDurably, writeFileDurably, type SyncFile } from '../../src/config/durable-file.js';
import { createDiskStore } from '../../src/attachments/disk-store.js';

/**
 * Files kept beside the data (keys, attachments) are on disk, whole and under their name, once their
 * write resolves: each step synced in the order a crash of the machine needs.
 */
describe('files written durably', () => {
  const dirs: string[] = [];
  const folder = () => {
    const dir = mkdtempSync(join(tmpdir(), 'handover-durable-file-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  /** Every sync, in order, with what the folder held at that moment. */
  const watched = (dir: string) => {
    const steps: { path: string; entries: string[] }[] = [];
    const sync: SyncFile = async (handle, path) => {
      steps.push({ path, entries: readdirSync(dir).sort() });
      await handle.sync();
    };
    return { steps, sync };
  };

  it('syncs the file under a temporary name, renames it into place, then syncs the folder', async () => {
    const dir = folder();
    const { steps, sync } = watched(dir);
    await writeFileDurably(join(dir, 'key'), 'secret\n', { mode: 0o600 }, sync);
    expect(readFileSync(join(dir, 'key'), 'utf8')).toBe('secret\n');
    expect(statSync(join(dir, 'key')).mode & 0o777).toBe(0o600);
    expect(steps).toHaveLength(2);
    // The data first, under a name no reader takes for the file...
    expect(steps[0]!.path).toMatch(/\/\.key\.[0-9a-f]{12}\.part$/);
    expect(steps[0]!.entries).toEqual([expect.stringMatching(/^\.key\.[0-9a-f]{12}\.part$/)]);
    // ...then the folder, once it holds the file under its name and nothing else.
    expect(steps[1]).toEqual({ path: dir, entries: ['key'] });
  });

  it('exclusive: leaves a file that exists as it was, and no temporary file', async () => {
    const dir = folder();
    await writeFileDurably(join(dir, 'token'), 'first\n', { mode: 0o600, exclusive: true });
    await expect(writeFileDurably(join(dir, 'token'), 'second\n', { mode: 0o600, exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(join(dir, 'token'), 'utf8')).toBe('first\n');
    expect(readdirSync(dir)).toEqual(['token']);
    // Not exclusive: replaced.
    await writeFileDurably(join(dir, 'token'), 'third\n', { mode: 0o600 });
    expect(readFileSync(join(dir, 'token'), 'utf8')).toBe('third\n');
  });

  it('a failed sync fails the write and leaves neither the file nor a temporary one', async () => {
    const dir = folder();
    const failing: SyncFile = async () => {
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    };
    await expect(writeFileDurably(join(dir, 'key'), 'secret\n', { mode: 0o600 }, failing)).rejects.toMatchObject({ code: 'EIO' });
    expect(readdirSync(dir)).toEqual([]);
  });

  it('goes on where folders cannot be synced (EINVAL), as PostgreSQL does; a file that cannot be is an error', async () => {
    const dir = folder();
    const foldersRefused: SyncFile = async (handle, path) => {
      if (path === dir) throw Object.assign(new Error('EINVAL: invalid argument, fsync'), { code: 'EINVAL' });
      await handle.sync();
    };
    await writeFileDurably(join(dir, 'key'), 'secret\n', { mode: 0o600 }, foldersRefused);
    expect(readFileSync(join(dir, 'key'), 'utf8')).toBe('secret\n');
    const filesRefused: SyncFile = async () => {
      throw Object.assign(new Error('EINVAL: invalid argument, fsync'), { code: 'EINVAL' });
    };
    await expect(writeFileDurably(join(dir, 'other'), 'x', { mode: 0o600 }, filesRefused)).rejects.toMatchObject({ code: 'EINVAL' });
  });

  it('makes folders whose names are synced in their parents, and syncs nothing for a folder that exists', async () => {
    const dir = folder();
    const { steps, sync } = watched(dir);
    await makeFolderDurably(join(dir, 'a', 'b'), 0o700, sync);
    expect(steps.map((s) => s.path)).toEqual([join(dir, 'a', 'b'), join(dir, 'a'), dir]);
    steps.length = 0;
    await makeFolderDurably(join(dir, 'a', 'b'), 0o700, sync);
    expect(steps).toEqual([]);
  });

  it('an attachment is stored only once synced, with its tenant’s new folder', async () => {
    const dir = folder();
    const { steps, sync } = watched(dir);
    const store = createDiskStore(dir, sync);
    await store.put('tenant_1/attachment_1', Buffer.from('bytes'), 'text/plain');
    expect((await store.get('tenant_1/attachment_1'))?.toString()).toBe('bytes');
    expect(steps.map((s) => s.path)).toEqual([
      join(dir, 'tenant_1'),
      dir,
      expect.stringMatching(/\/tenant_1\/\.attachment_1\.[0-9a-f]{12}\.part$/),
      join(dir, 'tenant_1'),
    ]);
  });
});
