import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * The parts of an npm registry that `npm audit` talks to, written from npm's registry API: the bulk
 * advisory endpoint (`POST /-/npm/v1/security/advisories/bulk`, a gzipped `{name: [versions]}` body,
 * answered with `{name: [advisory]}`) and the packuments npm reads to work out fixes (`GET /<name>`).
 * The test decides what the advisory endpoint answers.
 */
export interface Advisory {
  id: number;
  url: string;
  title: string;
  severity: 'info' | 'low' | 'moderate' | 'high' | 'critical';
  vulnerable_versions: string;
  cwe: string[];
  cvss: { score: number; vectorString: string | null };
}

export interface FakeNpmRegistry {
  url: string;
  /** The answer to the advisory endpoint: advisories by package name, or an HTTP status without a body. */
  advisories: Record<string, Advisory[]> | { status: number };
  /** Package versions npm asked advisories for, by name (the last bulk request). */
  asked: Record<string, string[]>;
  /** Packuments served: name → its versions. */
  packages: Record<string, string[]>;
  close(): Promise<void>;
}

export async function startFakeNpmRegistry(packages: Record<string, string[]>): Promise<FakeNpmRegistry> {
  const registry: FakeNpmRegistry = { url: '', advisories: {}, asked: {}, packages, close: async () => {} };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
      if (req.method === 'POST' && path === '/-/npm/v1/security/advisories/bulk') {
        const raw = Buffer.concat(chunks);
        const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
        registry.asked = JSON.parse(body.toString('utf8')) as Record<string, string[]>;
        if ('status' in registry.advisories) return void res.writeHead(registry.advisories.status as number, { allow: 'GET,HEAD' }).end();
        const answer = Object.fromEntries(Object.entries(registry.advisories).filter(([name]) => name in registry.asked));
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      }
      const name = path.slice(1);
      const versions = req.method === 'GET' ? registry.packages[name] : undefined;
      if (!versions) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
      const packument = {
        name,
        'dist-tags': { latest: versions.at(-1) },
        versions: Object.fromEntries(
          versions.map((version) => [version, { name, version, dist: { tarball: `${registry.url}/${name}/-/${name}-${version}.tgz` } }]),
        ),
      };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registry.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  registry.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return registry;
}
