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
      emitter.on(channel, handler);
      return () => emitter.off(channel, handler);
    },
    health() {
      return { kind: 'local', connected: true, since };
    },
    async close() {
      emitter.removeAllListeners();
    },
  };
}
