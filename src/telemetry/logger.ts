import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths that must never reach a log line. */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["webhook-signature"]',
  '*.password',
  '*.secret',
  '*.apiKey',
  '*.token',
  '*.webhookSecret',
  '*.config.secret',
  '*.credential',
  '*.accessToken',
  'req.headers["api_access_token"]',
  '*.keySecret',
  '*.userToken',
  '*.botToken',
  '*.webhookApiKey',
  '*.hmacToken',
  '*.keys[*].key',
  '*.webhook_secret',
  '*.password_hash',
  '*.key_hash',
  '*.authorization',
  '*.headers.authorization',
  '*.headers.cookie',
];

/**
 * Fields that carry conversations or remote answers' bodies. Nothing logs them on purpose; listed so a
 * future log line that passes a message, a request body or a stored payload does not print its text.
 */
export const contentPaths = ['text', 'body', 'rawBody', 'payload', 'transcript', 'metadata', 'answerQuote'].flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
]);

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'handover' },
      redact: { paths: [...redactPaths, ...contentPaths], censor: '[redacted]' },
      // Errors keep their catalogue code (an own property of AppError) and their whole `cause` chain.
      serializers: { err: pino.stdSerializers.errWithCause },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination as pino.DestinationStream | undefined,
  );
}

/**
 * Writes a line another logger already made (as JSON, ending in a newline) to where `log` writes: the
 * delivery thread's log lines reach the service's own destination this way, in one stream.
 */
export function lineWriter(log: Logger): (line: string) => void {
  const destination = (log as unknown as Record<symbol, pino.DestinationStream>)[pino.symbols.streamSym];
  return (line) => destination?.write(line);
}
