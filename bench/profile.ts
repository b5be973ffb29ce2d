/**
 * Where a process's CPU goes: a summary of the V8 CPU profiles that `node --cpu-prof` writes (one file
 * per thread) — self time by area (the service's own modules, each package, Node's internals, native
 * calls such as `writev`, garbage collection) and the functions that take the most.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileShare {
  name: string;
  ms: number;
  /** Share of the thread's busy time (idle excluded). */
  percent: number;
}

export interface ThreadProfile {
  thread: string;
  busyMs: number;
  areas: ProfileShare[];
  functions: ProfileShare[];
}

/** Where a frame belongs, named without any path of this machine. */
function area(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : `native ${functionName || '(anonymous)'}`;
  if (functionName.startsWith('wasm-function')) return 'wasm';
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const [scope, name] = url.slice(modules + '/node_modules/'.length).split('/');
    return scope!.startsWith('@') ? `${scope}/${name}` : scope!;
  }
  if (url.startsWith('node:')) return url;
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return `service ${url.slice(dist + '/dist/'.length).split('/')[0]}`;
  return url.slice(url.lastIndexOf('/') + 1);
}

function where(functionName: string, url: string, line: number): string {
  const file = url.includes('/node_modules/')
    ? url.slice(url.lastIndexOf('/node_modules/') + '/node_modules/'.length)
    : url.includes('/dist/')
      ? url.slice(url.lastIndexOf('/dist/') + '/dist/'.length)
      : url.startsWith('node:')
        ? url
        : url.slice(url.lastIndexOf('/') + 1);
  if (functionName.startsWith('wasm-function')) return `${functionName} (wasm)`;
  return url ? `${functionName || '(anonymous)'} (${file}:${line + 1})` : functionName || '(anonymous)';
}

function top(map: Map<string, number>, busy: number, n: number): ProfileShare[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, ms: Math.round(us / 1000), percent: Math.round((1000 * us) / Math.max(1, busy)) / 10 }));
}

/** Summarises every `.cpuprofile` in `dir`: one entry per thread, the busiest first. */
export function summarizeProfiles(dir: string, topN = 12): ThreadProfile[] {
  const out: ThreadProfile[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const areas = new Map<string, number>();
    const functions = new Map<string, number>();
    let busy = 0;
    profile.samples.forEach((id, i) => {
      const frame = byId.get(id);
      const us = profile.timeDeltas[i] ?? 0;
      if (!frame || frame.functionName === '(idle)') return;
      busy += us;
      const a = area(frame.functionName, frame.url);
      areas.set(a, (areas.get(a) ?? 0) + us);
      const f = where(frame.functionName, frame.url, frame.lineNumber);
      functions.set(f, (functions.get(f) ?? 0) + us);
    });
    // CPU.<date>.<time>.<pid>.<thread id>.<sequence>.cpuprofile: thread 0 is the main thread.
    const tid = file.split('.')[4];
    out.push({
      thread: tid === '0' ? 'main thread' : `worker thread ${tid}`,
      busyMs: Math.round(busy / 1000),
      areas: top(areas, busy, topN),
      functions: top(functions, busy, topN),
    });
  }
  return out.sort((a, b) => b.busyMs - a.busyMs);
}
