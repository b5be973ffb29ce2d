import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error a plain ES module of the build scripts, without types
import { checkImports } from '../../scripts/check-imports.js';

/** scripts/check-imports.js (run by `npm run lint`): the folder order and the file-cycle check. */
const check = checkImports as (root: string, order?: string[][]) => string[];

const src = fileURLToPath(new URL('../../src', import.meta.url));
let root: string;

function tree(files: Record<string, string>): string {
  root = mkdtempSync(join(tmpdir(), 'imports-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

const order = [['low'], ['mid'], ['high']];

describe('import graph check', () => {
  it('passes on the project itself', () => {
    expect(check(src)).toEqual([]);
  });

  it('passes imports that point down the order, and within a folder', () => {
    const dir = tree({
      'low/a.ts': 'export const a = 1;\n',
      'mid/b.ts': "import { a } from '../low/a.js';\nimport { c } from './c.js';\nexport const b = a + c;\n",
      'mid/c.ts': 'export const c = 2;\n',
      'high/d.ts': "import { b } from '../mid/b.js';\nexport const d = b;\n",
    });
    expect(check(dir, order)).toEqual([]);
  });

  it('names an import that points up the order, type-only ones included', () => {
    const dir = tree({
      'low/a.ts': "import type { B } from '../mid/b.js';\nexport const a = (b: B) => b;\n",
      'mid/b.ts': 'export type B = number;\n',
    });
    expect(check(dir, order)).toEqual(['src/low/a.ts:1 imports src/mid/b.ts: low may not import mid (mid is above low)']);
  });

  it('names an import between peers and a folder missing from the order', () => {
    const dir = tree({
      'left/a.ts': "import { b } from '../right/b.js';\nexport const a = b;\n",
      'right/b.ts': 'export const b = 1;\n',
      'odd/c.ts': "import { b } from '../right/b.js';\nexport const c = b;\n",
    });
    const problems = check(dir, [['left', 'right']]);
    expect(problems).toContain('src/left/a.ts:1 imports src/right/b.ts: left may not import right (peers)');
    expect(problems.some((p) => p.startsWith('src/odd/c.ts:1: folder odd has no place in the folder order'))).toBe(true);
  });

  it('names a cycle between files of one folder, dynamic imports included', () => {
    const dir = tree({
      'low/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'low/b.ts': "export const b = 1;\nexport const load = () => import('./c.js');\n",
      'low/c.ts': "import { a } from './a.js';\nexport const c = a;\n",
    });
    const problems = check(dir, order);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^import cycle between files: /);
    for (const f of ['src/low/a.ts', 'src/low/b.ts', 'src/low/c.ts']) expect(problems[0]).toContain(f);
  });

  it('lets any folder read the types of src/deps.ts, never its values', () => {
    const dir = tree({
      'deps.ts': 'export interface Deps { n: number }\nexport const defaults = 1;\n',
      'low/a.ts': "import type { Deps } from '../deps.js';\nexport const a = (d: Deps) => d.n;\n",
      'mid/b.ts': "import { defaults } from '../deps.js';\nexport const b = defaults;\n",
    });
    expect(check(dir, [...order, ['(root)']])).toEqual(['src/mid/b.ts:1 imports a value from src/deps.ts, which may be imported for its types only']);
  });
});
