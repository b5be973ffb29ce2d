import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';

/**
 * Starts a worker thread on the module `name` beside `from` (the caller's `import.meta.url`): the built
 * `.js` file, or, when the service runs from source, the `.ts` file through tsx (a worker does not
 * inherit the main thread's loader). The embedded database's thread and the delivery thread start so.
 */
export function startModuleThread(
  from: string,
  name: string,
  workerData: unknown,
  resourceLimits?: ResourceLimits,
  /** What `workerData` holds that moves to the thread (a MessagePort). */
  transferList: TransferListItem[] = [],
): Worker {
  const fromSource = from.endsWith('.ts');
  const entry = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, from);
  const extra = { ...(resourceLimits ? { resourceLimits } : {}), ...(transferList.length ? { transferList } : {}) };
  if (!fromSource) return new Worker(entry, { workerData, ...extra });
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); }).catch((err) => { throw err; });`;
  return new Worker(boot, { eval: true, workerData, ...extra });
}
