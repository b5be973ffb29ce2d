import { AsyncResource } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import type { Logger } from '../telemetry/logger.js';
import { RESYNC, type Bus, type BusHealth } from './bus.js';

export interface RedisBusOptions {
  url: string;
  /** Prepended to every channel, so several installations (or test runs) can share one Redis. */
  prefix: string;
  instanceId: string;
  log: Logger;
  /** Bound of connecting and of each command; Redis is never waited on for longer. */
  timeoutMs: number;
  /** While Redis is away, subscribers get a `resync` wake-up this often, so they re-read the truth. */
  degradedWakeMs: number;
  onPublishFailure?: () => void;
}

interface Envelope {
  from: string;
  m: unknown;
}

/**
 * Fan-out between instances through Redis pub/sub. Signals from this instance reach its own
 * subscribers directly (no round trip, and no dependence on Redis); other instances receive them
 * through Redis and drop their own echoes by instance id.
 *
 * Redis is a wake-up channel, never the truth (see bus.ts), so its failures degrade rather than break:
 * publishing fails fast (no offline queue piling up in memory) and is counted; while it is away every
 * subscriber is woken every `degradedWakeMs` to re-read the database, and once more when it is back,
 * since signals sent meanwhile are lost.
 */
export function createRedisBus(options: RedisBusOptions): Bus {
  const { log, prefix } = options;
  const local = new EventEmitter();
  local.setMaxListeners(0);
  const connectionOptions = {
    connectTimeout: options.timeoutMs,
    commandTimeout: options.timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Reconnect for ever, never faster than every 2 s once it has failed a few times.
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
    autoResubscribe: false,
    lazyConnect: true,
  };
  const pub = new Redis(options.url, { ...connectionOptions, connectionName: `handover-pub-${options.instanceId}` });
  const sub = new Redis(options.url, { ...connectionOptions, connectionName: `handover-sub-${options.instanceId}` });
  let connected = false;
  let everConnected = false;
  let since = new Date();
  let lastError: string | undefined;
  let closed = false;
  let degradedTimer: NodeJS.Timeout | undefined;

  const emitLocal = (channel: string, message: unknown): void => {
    queueMicrotask(() => {
      try {
        local.emit(channel, message);
      } catch (err) {
        log.error({ err, channel }, 'bus handler failed');
      }
    });
  };
  const channels = (): string[] => local.eventNames().filter((name): name is string => typeof name === 'string');
  const resyncAll = (): void => {
    for (const channel of channels()) emitLocal(channel, RESYNC);
  };

  const setConnected = (value: boolean, reason?: string): void => {
    if (connected === value) return;
    connected = value;
    since = new Date();
    if (value) {
      clearInterval(degradedTimer);
      degradedTimer = undefined;
      lastError = undefined;
      if (everConnected) log.info('Redis is reachable again: live signals between instances are restored');
      everConnected = true;
      // Whatever was published while we were away is lost: everyone re-reads once.
      resyncAll();
    } else {
      lastError = reason;
      log.warn({ reason }, 'Redis is unreachable: instances fall back to polling the database until it returns');
      startPolling();
    }
  };
  function startPolling(): void {
    degradedTimer ??= setInterval(resyncAll, options.degradedWakeMs);
    degradedTimer.unref();
  }

  // Connected only once both connections are up and every channel is subscribed again: until then
  // subscribers keep being woken to poll.
  let subscribed = false;
  const refresh = () => setConnected(pub.status === 'ready' && sub.status === 'ready' && subscribed);
  sub.on('ready', () => {
    subscribed = false;
    const names = channels();
    const resubscribed = names.length > 0 ? sub.subscribe(...names.map((c) => prefix + c)) : Promise.resolve();
    resubscribed.then(
      () => {
        subscribed = true;
        refresh();
      },
      (err: Error) => {
        log.warn({ err }, 'resubscribing to Redis channels failed; reconnecting to try again');
        sub.disconnect(true);
      },
    );
  });
  pub.on('ready', refresh);
  for (const connection of [pub, sub]) {
    connection.on('error', (err: Error) => {
      lastError = err.message;
    });
    connection.on('close', () => {
      if (connection === sub) subscribed = false;
      if (!closed) setConnected(false, lastError ?? 'connection closed');
    });
  }
  sub.on('message', (fullChannel: string, payload: string) => {
    if (!fullChannel.startsWith(prefix)) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      log.warn({ channel: fullChannel }, 'ignored a malformed message on a Redis channel');
      return;
    }
    if (envelope.from === options.instanceId) return;
    emitLocal(fullChannel.slice(prefix.length), envelope.m);
  });

  // Not being able to reach Redis at start is a degraded start, not a failed one: poll until it answers.
  lastError = 'connecting';
  startPolling();
  for (const connection of [pub, sub]) {
    connection.connect().catch((err: Error) => {
      lastError = err.message;
    });
  }

  return {
    publish(channel, message) {
      if (local.listenerCount(channel) > 0) emitLocal(channel, message);
      if (pub.status !== 'ready') {
        options.onPublishFailure?.();
        return;
      }
      pub.publish(prefix + channel, JSON.stringify({ from: options.instanceId, m: message } satisfies Envelope)).catch((err: Error) => {
        options.onPublishFailure?.();
        log.debug({ err, channel }, 'publishing to Redis failed; subscribers elsewhere catch up by polling');
      });
    },
    subscribe(channel, handler) {
      const first = local.listenerCount(channel) === 0;
      // Run in the subscriber's async context, not the publisher's (whose request deadline may be over).
      const bound = AsyncResource.bind(handler);
      local.on(channel, bound);
      if (first && sub.status === 'ready') {
        sub.subscribe(prefix + channel).catch((err: Error) => {
          // Without the subscription this channel would hear nothing: reconnect, which resubscribes all.
          log.warn({ err, channel }, 'subscribing to a Redis channel failed; reconnecting to try again');
          sub.disconnect(true);
        });
      }
      return () => {
        local.off(channel, bound);
        if (local.listenerCount(channel) === 0 && sub.status === 'ready') {
          sub.unsubscribe(prefix + channel).catch(() => undefined);
        }
      };
    },
    health(): BusHealth {
      return { kind: 'redis', connected, since, ...(lastError && !connected ? { lastError } : {}) };
    },
    async close() {
      closed = true;
      clearInterval(degradedTimer);
      local.removeAllListeners();
      pub.disconnect();
      sub.disconnect();
    },
  };
}
