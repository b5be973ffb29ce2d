import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCatalogue } from '../../src/resilience/errors.js';
import { settings } from '../../src/config/config.js';

describe('documentation stays in step with the code', () => {
  it('docs/errors.md lists every error code with its status, and nothing else', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm)].map((m) => [m[1], Number(m[2])]);
    const expected = Object.entries(errorCatalogue).map(([code, e]) => [code, e.status]);
    expect(rows.sort()).toEqual(expected.sort());
  });

  it('docs/configuration.md lists every setting with its default', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const setting of Object.values(settings)) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${setting.env}\``));
      expect(row, `${setting.env} is documented`).toBeDefined();
      if (setting.default) expect(row, `${setting.env} default`).toContain(`\`${setting.default}\``);
    }
  });
});
