import { AppError } from '../resilience/errors.js';
import { withoutDeadline } from '../resilience/deadline.js';
import type { FastifyBaseLogger } from 'fastify';
import type { SseStream } from './sse.js';

/**
 * Open event streams per credential (an API key, a desk session) on this instance. A stream costs a
 * socket, a subscription and a periodic check for as long as it is open, so one credential may hold
 * only so many.
 */
export class StreamCounts {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts one more stream of `credential` or refuses it (`429 too_many_streams`); returns its release, which counts once. */
  take(credential: string, what: string): () => void {
    const held = this.open.get(credential) ?? 0;
    if (held >= this.max) {
      throw new AppError('too_many_streams', {
        message: `This ${what} already holds ${this.max} open event streams on this instance (HANDOVER_STREAMS_PER_CREDENTIAL); close one before opening another.`,
        retryAfterSeconds: 5,
      });
    }
    this.open.set(credential, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(credential) ?? 1) - 1;
      if (left > 0) this.open.set(credential, left);
      else this.open.delete(credential);
    };
  }
}

export interface CredentialWatch {
  /** Checks again now (a revocation or sign-out signal); checks in flight fold into one more. */
  recheck(): void;
}

/**
 * Keeps a stream open only as long as its credential: the credential is checked again on every
 * `recheck()` (a signal that something was revoked or ended) and every `everyMs` in any case (a signal
 * lost, another instance without Redis, a session past its lifetime). When `stillValid` says no, the
 * stream gets one last event — the client's reason, with a stable code — and is ended. A check that
 * fails (the database away) keeps the stream: it is tried again at the next tick, and the stream's
 * requests would be refused anyway.
 */
export function endWithCredential(
  stream: SseStream,
  options: {
    everyMs: number;
    stillValid: () => Promise<boolean>;
    finalEvent: () => { event: string; data: unknown };
    log: FastifyBaseLogger;
  },
): CredentialWatch {
  let checking = false;
  let again = false;
  let ended = false;
  const check = async (): Promise<void> => {
    if (ended || stream.closed) return;
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      do {
        again = false;
        // Outside the opening request's deadline: the stream outlives it by design.
        const valid = await withoutDeadline(options.stillValid).catch((err: unknown) => {
          options.log.debug({ err }, 'checking the credential of an event stream failed; checked again at the next tick');
          return true;
        });
        if (!valid && !ended && !stream.closed) {
          ended = true;
          await stream.send(options.finalEvent());
          stream.end();
          return;
        }
      } while (again && !stream.closed);
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), options.everyMs);
  timer.unref();
  stream.onClose(() => clearInterval(timer));
  return { recheck: () => void check() };
}
