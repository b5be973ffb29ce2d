import { request } from 'node:http';

/**
 * A JSON request sent from another loopback address (Linux routes all of 127/8 to lo), as a client
 * elsewhere would: the service tells clients apart by address.
 */
export function requestFrom(
  localAddress: string,
  method: string,
  url: string,
  body: string | undefined,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method, localAddress, headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, timeout: 10_000 },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}
