import { describe, expect, expectTypeOf, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('config', () => {
  it('starts with nothing set: embedded store, local address, bounded waits', () => {
    const config = loadConfig({});
    expect(config.database.url).toBeUndefined();
    expect(config.database.dataDir).toBe('./.handover');
    expect(config.port).toBe(8080);
    expect(config.publicUrl).toBe('http://localhost:8080');
    expect(config.http.keepAliveTimeoutMs).toBeGreaterThan(60_000);
    expect(config.database.poolTimeoutMs).toBeGreaterThan(0);
    expect(config.delivery.timeoutMs).toBeGreaterThan(0);
  });

  it('lists every invalid setting at once', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'eighty', HANDOVER_LOG_LEVEL: 'loud', HANDOVER_DB_POOL_SIZE: '0', HANDOVER_PUBLIC_URL: 'not a url' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toHaveLength(4);
    expect(problems.join('\n')).toMatch(/PORT.*whole number/);
    expect(problems.join('\n')).toMatch(/HANDOVER_LOG_LEVEL.*one of/);
    expect(problems.join('\n')).toMatch(/HANDOVER_DB_POOL_SIZE.*1\.\.500/);
    expect(problems.join('\n')).toMatch(/HANDOVER_PUBLIC_URL.*not a URL/);
  });

  it('requires an admin token when instances share a database', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://localhost/handover' })).toThrow(/HANDOVER_ADMIN_TOKEN/);
    expect(loadConfig({ DATABASE_URL: 'postgres://localhost/handover', HANDOVER_ADMIN_TOKEN: 'x'.repeat(32) }).database.url).toBe(
      'postgres://localhost/handover',
    );
  });

  it('reads the trusted proxies as addresses and CIDRs or a hop count, and refuses anything else', () => {
    expect(loadConfig({}).http.trustProxy).toBe(false);
    expect(loadConfig({ HANDOVER_TRUST_PROXY: '10.0.0.0/8, 192.168.1.10,loopback' }).http.trustProxy).toBe('10.0.0.0/8,192.168.1.10,loopback');
    // A hop count would believe X-Forwarded-For from any client that connects directly.
    expect(() => loadConfig({ HANDOVER_TRUST_PROXY: '2' })).toThrow(/HANDOVER_TRUST_PROXY.*hop count/);
    expect(() => loadConfig({ HANDOVER_TRUST_PROXY: 'true' })).toThrow(/HANDOVER_TRUST_PROXY.*"true"/);
    expect(() => loadConfig({ HANDOVER_TRUST_PROXY: 'proxy.internal' })).toThrow(/HANDOVER_TRUST_PROXY/);
  });

  it('treats an empty DATABASE_URL as unset', () => {
    expect(loadConfig({ DATABASE_URL: '' }).database.url).toBeUndefined();
  });

  it('reads the standard OpenTelemetry variables: tracing off by default, endpoints, sampler, export headers', () => {
    const off = loadConfig({});
    expect(off.tracing).toEqual({
      endpoint: undefined,
      tracesEndpoint: undefined,
      serviceName: 'handover',
      sampler: 'parentbased_always_on',
      samplerRatio: 1,
      headers: {},
    });
    const on = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20abc, x-scope = tenant-1',
    });
    expect(on.tracing).toMatchObject({
      endpoint: 'http://collector:4318',
      sampler: 'parentbased_traceidratio',
      samplerRatio: 0.25,
      headers: { authorization: 'Bearer abc', 'x-scope': 'tenant-1' },
    });
    let problems: string[] = [];
    try {
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector',
        OTEL_TRACES_SAMPLER: 'sometimes',
        OTEL_TRACES_SAMPLER_ARG: '2',
        OTEL_EXPORTER_OTLP_HEADERS: 'novalue',
      });
    } catch (err) {
      problems = (err as { problems: string[] }).problems;
    }
    expect(problems.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT.*not a URL/);
    expect(problems.join('\n')).toMatch(/OTEL_TRACES_SAMPLER:.*one of/);
    expect(problems.join('\n')).toMatch(/OTEL_TRACES_SAMPLER_ARG.*\(0, 1\]/);
    expect(problems.join('\n')).toMatch(/OTEL_EXPORTER_OTLP_HEADERS.*key=value/);
  });

  it('refuses an override of a setting that does not exist, naming it, with the other problems', () => {
    // As an untyped caller (a test helper's plain record) passes them: typed callers are stopped by tsc.
    const overrides: Record<string, unknown> = { 'delivery.timeoutMS': 500, 'delivery.timeoutMs': 500, nonsense: true };
    let problems: string[] = [];
    try {
      loadConfig({ PORT: 'eighty' }, overrides);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      problems = (err as ConfigError).problems;
    }
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/delivery\.timeoutMS: no such setting/);
    expect(problems.join('\n')).toMatch(/nonsense: no such setting/);
    expect(problems.join('\n')).toMatch(/PORT.*whole number/);
    expect(loadConfig({}, { 'delivery.timeoutMs': 500 }).delivery.timeoutMs).toBe(500);
    // @ts-expect-error a misspelt setting is a compile error for a typed caller
    expect(() => loadConfig({}, { 'delivery.timeoutMS': 500 })).toThrow(/no such setting/);
  });

  it('is frozen once loaded, but for what is known only when listening and the live admission thresholds', () => {
    const config = loadConfig({ PORT: '0', HANDOVER_DEMO_PORT: '0' });
    expect(() => ((config as { port: number }).port = 1)).toThrow(TypeError);
    expect(() => ((config.delivery as { timeoutMs: number }).timeoutMs = 1)).toThrow(TypeError);
    expect(() => ((config.http.uploads as { windowMs: number }).windowMs = 1)).toThrow(TypeError);
    expect(() => ((config.outbound as { allowPrivate: boolean }).allowPrivate = false)).toThrow(TypeError);
    expect(() => ((config.tracing.headers as Record<string, string>).authorization = 'x')).toThrow(TypeError);
    expect(() => Object.assign(config, { extra: 1 })).toThrow(TypeError);
    expect(() => delete (config as { publicUrl?: string }).publicUrl).toThrow(TypeError);
    config.publicUrl = 'http://localhost:41234';
    config.demo.port = 41235;
    config.admission.heapUsedLimitRatio = 0.5;
    expect([config.publicUrl, config.demo.port, config.admission.heapUsedLimitRatio]).toEqual(['http://localhost:41234', 41235, 0.5]);
  });

  it("takes each setting's type from the table", () => {
    const config = loadConfig({});
    expectTypeOf(config.logLevel).toEqualTypeOf<'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'>();
    expectTypeOf(config.http.trustProxy).toEqualTypeOf<false | string>();
    expectTypeOf(config.admission.latencyTargetMs).toEqualTypeOf<number | null>();
    expectTypeOf(config.database.url).toEqualTypeOf<string | undefined>();
    expectTypeOf(config.demo.enabled).toEqualTypeOf<boolean>();
    expectTypeOf(config.http.uploads.windowMs).toEqualTypeOf<number>();
  });
});
