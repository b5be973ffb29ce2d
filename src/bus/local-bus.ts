import { AsyncResource } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import type { Bus } from './bus.js';

/** The in-process bus of a single instance. Handlers run on a later tick, never inside the publisher. */
export function createLocalBus(onHandlerError: (err: unknown) => void = () => {}): Bus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  const since = new Date();
  return {
    publish(channel, message) {
      if (emitter.listenerCount(channel) === 0) return;
      queueMicrotask(() => {
        try {
          emitter.emit(channel, message);
        } catch (err) {
          onHandlerError(err);
        }
      });
    },
    subscribe(channel, handler) {
      // Handlers run in the subscriber's async context, not the publisher's: a publishing request's
      // deadline must not cut short the work a stream or worker does on the signal.
      const bound = AsyncResource.bind(handler);
      emitter.on(channel, bound);
      return () => emitter.off(channel, bound);
    },
    health() {
      return { kind: 'local', connected: true, since };
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
