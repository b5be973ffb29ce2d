import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.js';

describe('demo settings', () => {
  it('runs the demo with the embedded store only, the bot on the next port', () => {
    expect(loadConfig({}).demo).toEqual({ enabled: true, port: 8081 });
    expect(loadConfig({ DATABASE_URL: 'postgres://localhost/h', HANDOVER_ADMIN_TOKEN: 'x'.repeat(32) }).demo.enabled).toBe(false);
    expect(loadConfig({ PORT: '0' }).demo.port).toBe(0);
  });

  it('takes explicit values and rejects wrong ones', () => {
    expect(loadConfig({ HANDOVER_DEMO: 'false', HANDOVER_DEMO_PORT: '9000' }).demo).toEqual({ enabled: false, port: 9000 });
    expect(loadConfig({ DATABASE_URL: 'postgres://localhost/h', HANDOVER_ADMIN_TOKEN: 'x'.repeat(32), HANDOVER_DEMO: 'on' }).demo.enabled).toBe(true);
    expect(() => loadConfig({ HANDOVER_DEMO: 'maybe', HANDOVER_DEMO_PORT: 'x' })).toThrow(ConfigError);
  });
});
