import { label } from './status-model.js';
import type { ChartPoint, StatusSnapshot } from './status-service.js';

/**
 * The public status page as one HTML document: components, incidents with their timeline, and charts of
 * the last hour drawn as inline SVG on the server. No script and no inline style, so it is served under a
 * strict Content-Security-Policy; its stylesheet is a file.
 */
export function renderStatusPage(snapshot: PublicStatus, chart: ChartPoint[]): string {
  const components = snapshot.components
    .map(
      (c) =>
        `<li class="component state-${c.state}"><span class="name">${esc(c.name)}</span><span class="state">${esc(label(c.state))}</span><p>${esc(c.cause)}</p></li>`,
    )
    .join('\n');
  const incidents =
    snapshot.incidents.length === 0
      ? '<p class="none">No incidents in this instance\'s memory.</p>'
      : snapshot.incidents
          .map(
            (i) => `<article class="incident phase-${i.phase}">
<h3>${esc(i.componentName)}: ${esc(label(i.impact))} <span class="phase">${esc(i.phase)}</span></h3>
<ol class="timeline">${i.timeline.map((e) => `<li><time datetime="${esc(e.at)}">${esc(e.at.replace('T', ' ').slice(0, 19))} UTC</time> <strong>${esc(e.phase)}</strong> (${esc(label(e.state as StatusSnapshot['status']))}) ${esc(e.message)}</li>`).join('')}</ol>
</article>`,
          )
          .join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>handover status: ${esc(label(snapshot.status))}</title>
<link rel="stylesheet" href="/status/status.css">
</head>
<body>
<header class="overall state-${snapshot.status}"><h1>handover status</h1><p>${esc(overallSentence(snapshot.status))}</p><p class="updated">Updated ${esc(snapshot.updatedAt.replace('T', ' ').slice(0, 19))} UTC</p></header>
<main>
<section><h2>Components</h2><ul class="components">
${components}
</ul>${checksLine(snapshot.checks)}</section>
<section><h2>Last hour</h2>
${lineChart('Bot API latency (ms)', chart, [
  { key: 'p50Ms', name: 'p50', cls: 'p50' },
  { key: 'p95Ms', name: 'p95', cls: 'p95' },
  { key: 'p99Ms', name: 'p99', cls: 'p99' },
])}
${lineChart('Throughput (requests/s)', chart, [{ key: 'requestsPerSecond', name: 'requests/s', cls: 'throughput' }])}
${lineChart('Refused at the door (requests/s)', chart, [{ key: 'rejectionsPerSecond', name: 'refused/s', cls: 'rejections' }])}
</section>
<section><h2>Incidents</h2>
${incidents}
</section>
</main>
<footer><a href="/status.json">status.json</a></footer>
</body>
</html>
`;
}

/** What anyone may see: states and plain-language causes, no numbers, no connector names. */
export interface PublicStatus {
  status: StatusSnapshot['status'];
  updatedAt: string;
  components: Array<{ id: string; name: string; state: StatusSnapshot['status']; cause: string }>;
  /** Connectors' setup checks, counted (no names: tenants' connectors are not public). */
  checks?: { ok: number; failing: number; unchecked: number; lastCheckedAt: string | null };
  incidents: Array<{
    id: string;
    componentName: string;
    phase: string;
    impact: StatusSnapshot['status'];
    startedAt: string;
    resolvedAt: string | null;
    timeline: Array<{ at: string; phase: string; state: string; message: string }>;
  }>;
}

function checksLine(checks: PublicStatus['checks']): string {
  if (!checks) return '';
  const when = checks.lastCheckedAt ? `, last checked ${esc(checks.lastCheckedAt.replace('T', ' ').slice(0, 19))} UTC` : '';
  return `\n<p class="checks">Helpdesk setup checks: ${checks.ok} ok, ${checks.failing} failing, ${checks.unchecked} not checkable${when}.</p>`;
}

function overallSentence(state: StatusSnapshot['status']): string {
  if (state === 'operational') return 'All systems operational.';
  return `Some systems: ${label(state)}.`;
}

const W = 720;
const H = 160;
const PAD = 36;

function lineChart(title: string, points: ChartPoint[], series: Array<{ key: keyof ChartPoint; name: string; cls: string }>): string {
  const values = points.flatMap((p) => series.map((s) => Number(p[s.key])));
  const max = niceMax(Math.max(0, ...values));
  const x = (i: number) => PAD + (points.length <= 1 ? 0 : (i * (W - 2 * PAD)) / (points.length - 1));
  const y = (v: number) => H - PAD / 2 - (max === 0 ? 0 : (v / max) * (H - PAD));
  const lines = series
    .map(
      (s) =>
        `<polyline class="line ${s.cls}" fill="none" points="${points.map((p, i) => `${x(i).toFixed(1)},${y(Number(p[s.key])).toFixed(1)}`).join(' ')}"><title>${esc(s.name)}</title></polyline>`,
    )
    .join('');
  const legend = series.map((s, i) => `<text class="legend ${s.cls}" x="${W - PAD - 90 * (series.length - i)}" y="14">${esc(s.name)}</text>`).join('');
  return `<figure class="chart"><figcaption>${esc(title)}</figcaption>
<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">
<line class="axis" x1="${PAD}" y1="${H - PAD / 2}" x2="${W - PAD}" y2="${H - PAD / 2}"/>
<text class="tick" x="2" y="${y(max) + 4}">${fmt(max)}</text><text class="tick" x="2" y="${H - PAD / 2}">0</text>
<text class="tick" x="${PAD}" y="${H - 2}">-60 min</text><text class="tick" x="${W - PAD - 20}" y="${H - 2}">now</text>
${legend}${lines}
</svg></figure>`;
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const mag = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * mag) return m * mag;
  return 10 * mag;
}

function fmt(v: number): string {
  return v >= 100 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
}

function esc(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
