/**
 * Writes the OpenAPI document the service serves at /openapi.json to a file (default
 * openapi.json in the current folder), for linting and client generation:
 *
 *   npx tsx scripts/openapi.ts [out-file]
 *
 * It builds the app on an empty in-memory embedded store and reads the document from the app itself,
 * so the file is exactly what a running instance serves. It exits with 1, after writing, when the document
 * names what keeps it from being complete (`x-document-problems`: a route without a catalogue entry, …).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { loadConfig } from '../src/config/config.js';
import { createService } from '../src/service.js';
import { createPgliteDb } from '../src/store/pglite-db.js';
import { migrate } from '../src/store/migrate.js';
import { createLogger } from '../src/telemetry/logger.js';

const out = process.argv[2] ?? 'openapi.json';
const db = await createPgliteDb();
try {
  await migrate(db, () => {});
  const config = loadConfig(
    {},
    { logLevel: 'silent', adminToken: 'openapi-document-only', 'secrets.keys': [{ id: 'doc', key: Buffer.alloc(32).toString('base64') }] },
  );
  const service = await createService(config, { db, log: createLogger('silent') });
  try {
    await service.app.ready();
    const document = service.app.swagger() as { 'x-document-problems'?: string[] };
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(document, null, 2)}\n`);
    if (document['x-document-problems']) {
      console.error(`The OpenAPI document is incomplete:\n${document['x-document-problems'].join('\n')}`);
      process.exitCode = 1;
    }
  } finally {
    await service.stop();
  }
} finally {
  await db.close();
}
