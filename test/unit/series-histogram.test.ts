import { describe, expect, it } from 'vitest';
import { Histogram, Registry } from 'prom-client';
import { SeriesHistogram } from '../../src/telemetry/series-histogram.js';

const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const labelNames = ['http_request_method', 'http_route', 'http_response_status_code'] as const;
type Label = (typeof labelNames)[number];

/** The same observations into prom-client's Histogram and into a SeriesHistogram, each in a registry of its own. */
function both(observations: Array<[Record<Label, string>, number]>, zeros: Array<Record<Label, string>> = []) {
  const theirs = new Registry();
  const ours = new Registry();
  const reference = new Histogram({ name: 'x_seconds', help: 'Duration of x.', labelNames: [...labelNames], buckets, registers: [theirs] });
  const fast = new SeriesHistogram<Label>({ name: 'x_seconds', help: 'Duration of x.', labelNames, buckets, registers: [ours] });
  for (const labels of zeros) {
    reference.zero(labels);
    fast.zero(labels);
  }
  for (const [labels, value] of observations) {
    reference.observe(labels, value);
    fast.observe(labels, value);
  }
  return { theirs, ours, fast };
}

const post = (status: string): Record<Label, string> => ({
  http_request_method: 'POST',
  http_route: '/v1/handovers/:id/messages',
  http_response_status_code: status,
});

describe('SeriesHistogram', () => {
  it('is exported exactly as prom-client exports a histogram: bounds, cumulative counts, +Inf, sum and count, series in order', async () => {
    const { theirs, ours } = both(
      [
        [post('202'), 0.003],
        [post('202'), 0.005], // on a bound: counted in it (le is inclusive)
        [post('503'), 0],
        [post('202'), 0.75],
        [{ http_request_method: 'GET', http_route: '/v1/status "x"\\', http_response_status_code: '200' }, 42], // above every bound, a label to escape
        [post('503'), 0.0051],
      ],
      [post('500')],
    );
    const text = await ours.metrics();
    expect(text).toBe(await theirs.metrics());
    // Not equal by being empty: the lines a scrape reads are there.
    expect(text).toContain('x_seconds_bucket{le="0.005",http_request_method="POST",http_route="/v1/handovers/:id/messages",http_response_status_code="202"} 2');
    expect(text).toContain('x_seconds_count{http_request_method="POST",http_route="/v1/handovers/:id/messages",http_response_status_code="500"} 0');
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
  });

  it('a series kept and observed directly counts into the same export', async () => {
    const { theirs, ours, fast } = both([[post('202'), 0.02]]);
    const series = fast.series(post('202'));
    series.observe(0.2);
    series.observe(0.02);
    (theirs.getSingleMetric('x_seconds') as Histogram).observe(post('202'), 0.2);
    (theirs.getSingleMetric('x_seconds') as Histogram).observe(post('202'), 0.02);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // Found by a key of the caller's: the same series, its labels made only the first time.
    let made = 0;
    const labels = () => (made++, post('202'));
    fast.keyed('accepted', labels).observe(3);
    fast.keyed('accepted', labels).observe(0.001);
    (theirs.getSingleMetric('x_seconds') as Histogram).observe(post('202'), 3);
    (theirs.getSingleMetric('x_seconds') as Histogram).observe(post('202'), 0.001);
    expect(made).toBe(1);
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('refuses what prom-client refuses: a value that is not a number, a label it does not have, a label missing', () => {
    const fresh = () => new SeriesHistogram<Label>({ name: 'y_seconds', help: 'y', labelNames, buckets });
    expect(() => fresh().observe(post('202'), Number.NaN)).toThrow(TypeError);
    expect(() => fresh().observe({ ...post('202'), tenant: 't' } as Record<Label, string>, 1)).toThrow(/unknown label "tenant"/);
    expect(() => fresh().observe({ http_request_method: 'GET' } as Record<Label, string>, 1)).toThrow(/label "http_route" must be a string/);
  });

  it('reset forgets every series', async () => {
    const registry = new Registry();
    const fast = new SeriesHistogram<Label>({ name: 'z_seconds', help: 'z', labelNames, buckets, registers: [registry] });
    fast.observe(post('202'), 1);
    fast.reset();
    expect(await registry.metrics()).toBe('# HELP z_seconds z\n# TYPE z_seconds histogram\n');
  });
});
