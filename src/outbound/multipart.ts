import { randomBytes } from 'node:crypto';

export interface FormFile {
  /** The form field, e.g. `attachments[]`. */
  field: string;
  name: string;
  contentType: string;
  bytes: Buffer;
}

/**
 * A `multipart/form-data` body (RFC 7578) of text fields (each with its type, if it names one) and files, as one buffer: vendor APIs that
 * take a file with a message (Chatwoot's `attachments[]`, Salesforce's file entry) read it this way.
 * Names are quoted with their quotes and line breaks escaped, as browsers do.
 */
export function multipartForm(
  fields: ReadonlyArray<readonly [string, string] | readonly [string, string, string]>,
  files: readonly FormFile[],
): { body: Buffer; contentType: string } {
  const boundary = `----handover${randomBytes(12).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value, type] of fields) {
    // A field may name its type (a JSON part, as Salesforce's `messageEntry`).
    const typeLine = type ? `Content-Type: ${type}\r\n` : '';
    parts.push(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${quote(name)}"\r\n${typeLine}\r\n${value}\r\n`));
  }
  for (const file of files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${quote(file.field)}"; filename="${quote(file.name)}"\r\nContent-Type: ${file.contentType}\r\n\r\n`,
      ),
    );
    parts.push(file.bytes, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

function quote(value: string): string {
  return value.replace(/\r/g, '%0D').replace(/\n/g, '%0A').replace(/"/g, '%22');
}
