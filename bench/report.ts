/** Turns a benchmark run into the Markdown report and an SVG chart of goodput under overload. */
export interface Step {
  name: string;
  offeredPerSecond: number;
  acceptedPerSecond: number;
  /** Accepted and answered within 1 s, per second. */
  goodputPerSecond: number;
  acceptedP50Ms: number | null;
  acceptedP99Ms: number | null;
  rejectedP99Ms: number | null;
  codes: Record<string, number>;
  timedOut: number;
  /** p99 of how late the load generator sent requests: when high, it was starved, and latencies overstate. */
  generatorLagP99Ms?: number;
  deliveredPerSecond?: number;
  deliveryP50Ms?: number | null;
  deliveryP99Ms?: number | null;
  lost?: number;
  undelivered?: number;
  factor?: number;
  protection?: boolean;
  rssMb?: number;
  heapMb?: number;
  eventLoopLagMs?: number;
  minLimit?: number;
  maxWaiting?: number;
}

export interface BenchReport {
  machine: string;
  stepMs: number;
  /** End to end: accepted and delivered within 1 s at p99. */
  capacityPerSecond?: number;
  bareCapacityPerSecond?: number;
  /** The API alone: accepted within 250 ms at p99; the base of the overload factors. */
  apiCapacityPerSecond?: number;
  relay: Step[];
  bare: Step[];
  overload: Step[];
  slow: Step[];
  notes: string[];
  durationSeconds?: number;
}

const v = (x: number | null | undefined) => (x === null || x === undefined ? '–' : String(x));
const codes = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || '–';

export function renderReport(r: BenchReport): { markdown: string; svg: string } {
  const lines: string[] = [];
  lines.push('# Benchmark report', '');
  lines.push(`Machine: ${r.machine}. Each step: ${r.stepMs / 1000} s of open-loop load from a separate process; latency counted from when each request was due. Service on PostgreSQL, built as in production. Run took ${v(r.durationSeconds)} s.`, '');
  const ratio = r.capacityPerSecond && r.bareCapacityPerSecond ? Math.round((100 * r.capacityPerSecond) / r.bareCapacityPerSecond) : null;
  lines.push('## Relay: bot → service → helpdesk, against a bare relay', '');
  lines.push(`Capacity (highest step with ≥ 99 % accepted, accepted p99 ≤ 250 ms, delivery p99 ≤ 1 s): **${v(r.capacityPerSecond)} msg/s**. Bare relay (no durability, no order, no auth): **${v(r.bareCapacityPerSecond)} msg/s**. Ratio: **${v(ratio)} %**.`, '');
  lines.push('| offered/s | service accepted/s | accepted p50 / p99 ms | delivered/s | delivery p50 / p99 ms | lost | bare relay ok/s | bare p50 / p99 ms |', '|---|---|---|---|---|---|---|---|');
  r.relay.forEach((s, i) => {
    const b = r.bare[i];
    lines.push(`| ${s.offeredPerSecond} | ${s.acceptedPerSecond} | ${v(s.acceptedP50Ms)} / ${v(s.acceptedP99Ms)} | ${v(s.deliveredPerSecond)} | ${v(s.deliveryP50Ms)} / ${v(s.deliveryP99Ms)} | ${v(s.lost)} | ${v(b?.acceptedPerSecond)} | ${v(b?.acceptedP50Ms)} / ${v(b?.acceptedP99Ms)} |`);
  });
  lines.push('', `## Overload: 0.5× to 3× the API's capacity (${v(r.apiCapacityPerSecond)} msg/s accepted within 250 ms at p99), protection on and off`, '');
  lines.push('| load | protection | offered/s | goodput/s (≤ 1 s) | accepted p50 / p99 ms | rejected p99 ms | answers | peak RSS / heap MB | peak loop lag ms | generator late p99 ms | lost |', '|---|---|---|---|---|---|---|---|---|---|---|');
  for (const s of r.overload) {
    lines.push(`| ${s.factor}× | ${s.protection ? 'on' : 'off'} | ${s.offeredPerSecond} | ${s.goodputPerSecond} | ${v(s.acceptedP50Ms)} / ${v(s.acceptedP99Ms)} | ${v(s.rejectedP99Ms)} | ${codes({ ...(s.acceptedPerSecond ? { '2xx': Math.round((s.acceptedPerSecond * r.stepMs) / 1000) } : {}), ...s.codes })} | ${v(s.rssMb)} / ${v(s.heapMb)} | ${v(s.eventLoopLagMs)} | ${v(s.generatorLagP99Ms)} | ${v(s.lost)} |`);
  }
  lines.push('', '![Goodput under overload](overload.svg)', '');
  lines.push('## Slow helpdesk beside a healthy one', '');
  lines.push('| run | offered/s | accepted p50 / p99 ms | delivery p99 ms | not delivered after 20 s | answers |', '|---|---|---|---|---|---|');
  for (const s of r.slow) lines.push(`| ${s.name} | ${s.offeredPerSecond} | ${v(s.acceptedP50Ms)} / ${v(s.acceptedP99Ms)} | ${v(s.deliveryP99Ms)} | ${v(s.undelivered)} | ${codes(s.codes)} |`);
  if (r.notes.length) lines.push('', '## Notes', '', ...r.notes.map((n) => `- ${n}`));
  return { markdown: lines.join('\n') + '\n', svg: chart(r) };
}

function chart(r: BenchReport): string {
  const width = 640;
  const height = 360;
  const pad = { left: 60, right: 150, top: 30, bottom: 50 };
  const on = r.overload.filter((s) => s.protection);
  const off = r.overload.filter((s) => !s.protection);
  const maxX = Math.max(1, ...r.overload.map((s) => s.offeredPerSecond));
  const maxY = Math.max(1, ...r.overload.map((s) => Math.max(s.goodputPerSecond, s.offeredPerSecond)));
  const x = (value: number) => pad.left + (value / maxX) * (width - pad.left - pad.right);
  const y = (value: number) => height - pad.bottom - (value / maxY) * (height - pad.top - pad.bottom);
  const line = (steps: Step[], color: string) =>
    `<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${steps.map((s) => `${x(s.offeredPerSecond).toFixed(1)},${y(s.goodputPerSecond).toFixed(1)}`).join(' ')}"/>` +
    steps.map((s) => `<circle cx="${x(s.offeredPerSecond).toFixed(1)}" cy="${y(s.goodputPerSecond).toFixed(1)}" r="4" fill="${color}"/>`).join('');
  const capacity = r.apiCapacityPerSecond ?? 0;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${pad.left}" y="18" font-size="14" font-weight="bold">Goodput (answered ≤ 1 s) vs offered load</text>
<line x1="${pad.left}" y1="${height - pad.bottom}" x2="${width - pad.right}" y2="${height - pad.bottom}" stroke="#333"/>
<line x1="${pad.left}" y1="${pad.top}" x2="${pad.left}" y2="${height - pad.bottom}" stroke="#333"/>
<text x="${(pad.left + width - pad.right) / 2}" y="${height - 12}" text-anchor="middle">offered messages/s</text>
<text x="14" y="${(pad.top + height - pad.bottom) / 2}" transform="rotate(-90 14 ${(pad.top + height - pad.bottom) / 2})" text-anchor="middle">goodput/s</text>
<text x="${pad.left - 6}" y="${y(maxY) + 4}" text-anchor="end">${maxY}</text>
<text x="${pad.left - 6}" y="${y(0) + 4}" text-anchor="end">0</text>
<text x="${x(maxX)}" y="${height - pad.bottom + 16}" text-anchor="middle">${maxX}</text>
<line x1="${pad.left}" y1="${y(capacity)}" x2="${width - pad.right}" y2="${y(capacity)}" stroke="#999" stroke-dasharray="4 4"/>
<text x="${width - pad.right + 6}" y="${y(capacity) + 4}" fill="#666">capacity ${capacity}/s</text>
${line(on, '#1a7f37')}
${line(off, '#cf222e')}
<rect x="${width - pad.right + 6}" y="${pad.top + 10}" width="12" height="12" fill="#1a7f37"/><text x="${width - pad.right + 24}" y="${pad.top + 20}">protection on</text>
<rect x="${width - pad.right + 6}" y="${pad.top + 30}" width="12" height="12" fill="#cf222e"/><text x="${width - pad.right + 24}" y="${pad.top + 40}">protection off</text>
</svg>
`;
}
