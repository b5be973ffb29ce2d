/**
 * The type of a file from its own bytes (magic numbers), never only from what the uploader declared:
 * a page or a script renamed `photo.png` is text, not an image. Only the types a chat needs are known;
 * anything else is `null`, and refused. Text is valid UTF-8 with no control
 * characters but tab, line feed, carriage return, form feed and escape: an HTML or SVG file is text
 * too, and served as a download that never renders (attachment-routes.ts).
 */
const signatures: Array<{ type: string; test: (b: Buffer) => boolean }> = [
  { type: 'image/png', test: (b) => starts(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]) },
  { type: 'image/jpeg', test: (b) => starts(b, [0xff, 0xd8, 0xff]) },
  { type: 'image/gif', test: (b) => ascii(b, 0, 'GIF87a') || ascii(b, 0, 'GIF89a') },
  { type: 'image/webp', test: (b) => ascii(b, 0, 'RIFF') && ascii(b, 8, 'WEBP') },
  { type: 'application/pdf', test: (b) => ascii(b, 0, '%PDF-') },
  { type: 'application/zip', test: (b) => starts(b, [0x50, 0x4b, 0x03, 0x04]) },
  { type: 'video/mp4', test: (b) => ascii(b, 4, 'ftyp') && /^(isom|iso2|mp41|mp42|avc1|M4V |dash)$/.test(b.subarray(8, 12).toString('latin1')) },
  { type: 'audio/mpeg', test: (b) => ascii(b, 0, 'ID3') || (b.length > 1 && b[0] === 0xff && (b[1]! & 0xe0) === 0xe0 && b[1] !== 0xff) },
];

/** The types sniffText can tell: text of any of these is stored as declared, else as text/plain. */
const textTypes = new Set(['text/plain', 'text/csv', 'text/markdown']);

export function sniffType(bytes: Buffer): string | null {
  for (const { type, test } of signatures) if (test(bytes)) return type;
  return isText(bytes) ? 'text/plain' : null;
}

/**
 * The type to store: the sniffed one, after checking the declared one agrees with it. A declared
 * `application/octet-stream` (or none) says nothing, so the bytes decide. Text may be declared as any
 * of the plain text types. Answers `mismatch` when the declared type is another one than the bytes'.
 */
export function settleType(sniffed: string, declared: string | undefined): string | 'mismatch' {
  const given = normalize(declared);
  if (!given || given === 'application/octet-stream' || given === sniffed) return sniffed;
  if (sniffed === 'text/plain' && textTypes.has(given)) return given;
  return 'mismatch';
}

/** `Image/JPG; charset=x` → `image/jpeg`. */
export function normalize(type: string | undefined): string | undefined {
  const bare = type?.split(';')[0]?.trim().toLowerCase();
  if (!bare) return undefined;
  return aliases[bare] ?? bare;
}

const aliases: Record<string, string> = {
  'image/jpg': 'image/jpeg',
  'image/pjpeg': 'image/jpeg',
  'application/x-zip-compressed': 'application/zip',
  'audio/mp3': 'audio/mpeg',
};

/** Images a browser shows inline (never SVG: it is a document that can run script). */
export const inlineImageTypes = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

function starts(b: Buffer, bytes: number[]): boolean {
  return b.length >= bytes.length && bytes.every((v, i) => b[i] === v);
}

function ascii(b: Buffer, at: number, text: string): boolean {
  return b.length >= at + text.length && b.toString('latin1', at, at + text.length) === text;
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function isText(b: Buffer): boolean {
  for (const byte of b) {
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c && byte !== 0x1b) return false;
    if (byte === 0x7f) return false;
  }
  try {
    decoder.decode(b);
    return true;
  } catch {
    return false;
  }
}
