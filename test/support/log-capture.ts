import { Writable } from 'node:stream';

/** A stream to give a logger in place of stdout, keeping every line written to it. */
export interface LogCapture {
  stream: Writable;
  /** Everything written so far. */
  text(): string;
  /** Each line, parsed as JSON. */
  lines(): Array<Record<string, any>>;
}

export function captureLogs(): LogCapture {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  const text = () => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>),
  };
}
