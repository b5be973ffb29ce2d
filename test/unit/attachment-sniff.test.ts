import { describe, expect, it } from 'vitest';
import { settleType, sniffType } from '../../src/attachments/sniff.js';
import { AttachmentLinks } from '../../src/attachments/signed-links.js';
import type { AppError } from '../../src/resilience/errors.js';
import { files } from '../support/attachment-files.js';

describe('attachment types from the bytes', () => {
  it('reads each known type from its magic numbers, whatever the name or declared type', () => {
    expect(sniffType(files.png)).toBe('image/png');
    expect(sniffType(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]))).toBe('image/jpeg');
    expect(sniffType(Buffer.from('GIF89a\x01\x00', 'latin1'))).toBe('image/gif');
    expect(sniffType(Buffer.from('RIFF\x00\x00\x00\x00WEBPVP8 ', 'latin1'))).toBe('image/webp');
    expect(sniffType(files.pdf)).toBe('application/pdf');
    expect(sniffType(Buffer.from('PK\x03\x04rest', 'latin1'))).toBe('application/zip');
    expect(sniffType(files.elf)).toBeNull();
    // A page or an SVG is text: it is served as text, as a download, never rendered.
    expect(sniffType(files.html)).toBe('text/plain');
    expect(sniffType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>'))).toBe('text/plain');
    expect(sniffType(Buffer.from([0xc3, 0x28]))).toBeNull(); // not UTF-8
  });

  it('takes the declared type only when the bytes agree', () => {
    expect(settleType('image/png', 'image/png')).toBe('image/png');
    expect(settleType('image/jpeg', 'image/JPG; q=1')).toBe('image/jpeg');
    expect(settleType('image/png', 'application/octet-stream')).toBe('image/png');
    expect(settleType('image/png', undefined)).toBe('image/png');
    expect(settleType('text/plain', 'text/csv')).toBe('text/csv');
    expect(settleType('application/pdf', 'image/png')).toBe('mismatch');
    expect(settleType('text/plain', 'text/html')).toBe('mismatch');
    expect(settleType('text/plain', 'image/svg+xml')).toBe('mismatch');
  });
});

describe('signed attachment links', () => {
  const key = { id: 'k1', key: Buffer.alloc(32, 1).toString('base64') };
  const links = new AttachmentLinks([key], 'k1', 60);
  const now = new Date('2026-12-01T10:00:00Z');
  const parts = (path: string) => {
    const url = new URL(path, 'http://x');
    return {
      id: decodeURIComponent(url.pathname.split('/').at(-1)!),
      expires: url.searchParams.get('expires') ?? undefined,
      sig: url.searchParams.get('sig') ?? undefined,
    };
  };
  const code = (fn: () => void) => {
    try {
      fn();
      return 'ok';
    } catch (err) {
      return (err as AppError).code;
    }
  };

  it('verifies its own links until they expire, under any configured key', () => {
    const { path } = links.sign('att_1', now);
    const p = parts(path);
    expect(code(() => links.verify(p.id, p.expires, p.sig, new Date(now.getTime() + 59_000)))).toBe('ok');
    expect(code(() => links.verify(p.id, p.expires, p.sig, new Date(now.getTime() + 60_000)))).toBe('attachment_link_expired');
    // After a rotation the old key still verifies what it signed.
    const rotated = new AttachmentLinks([{ id: 'k2', key: Buffer.alloc(32, 2).toString('base64') }, key], 'k2', 60);
    expect(code(() => rotated.verify(p.id, p.expires, p.sig, now))).toBe('ok');
  });

  it('refuses a link whose id, expiry or signature was changed, or that another key signed', () => {
    const p = parts(links.sign('att_1', now).path);
    expect(code(() => links.verify('att_2', p.expires, p.sig, now))).toBe('attachment_link_invalid');
    expect(code(() => links.verify(p.id, String(Number(p.expires) + 1), p.sig, now))).toBe('attachment_link_invalid');
    expect(code(() => links.verify(p.id, p.expires, `${p.sig!.startsWith('A') ? 'B' : 'A'}${p.sig!.slice(1)}`, now))).toBe('attachment_link_invalid');
    // The same bytes in another spelling (the last character's spare bits) are not the link signed.
    const last = p.sig!.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    expect(code(() => links.verify(p.id, p.expires, `${p.sig!.slice(0, -1)}${sibling}`, now))).toBe('attachment_link_invalid');
    expect(code(() => links.verify(p.id, undefined, undefined, now))).toBe('attachment_link_invalid');
    const other = new AttachmentLinks([{ id: 'k1', key: Buffer.alloc(32, 3).toString('base64') }], 'k1', 60);
    expect(code(() => other.verify(p.id, p.expires, p.sig, now))).toBe('attachment_link_invalid');
  });
});
