import { describe, expect, it } from 'vitest';
import { sessionOptions } from '../../src/store/pg-db.js';

const ours = '-c enable_seqscan=off -c jit=off -c plan_cache_mode=force_generic_plan';

describe('the planner settings in a PostgreSQL connection', () => {
  it('go in the config, leaving the URL as it was, even one that is not a WHATWG URL', () => {
    for (const url of ['postgres://u:p@db.example:5432/handover', 'postgres://u:p@/handover?host=/cloudsql/project:region:db', 'postgres:///handover']) {
      expect(sessionOptions(url)).toEqual({ connectionString: url, options: ours });
    }
  });

  it('go into a URL that carries options of its own (pg lets those replace the config’s), before them', () => {
    const { connectionString, options } = sessionOptions('postgres://db/handover?options=-c%20enable_seqscan%3Don&sslmode=require');
    expect(options).toBeUndefined();
    const url = new URL(connectionString);
    expect(url.searchParams.get('options')).toBe(`${ours} -c enable_seqscan=on`);
    expect(url.searchParams.get('sslmode')).toBe('require');
  });

  it('leave a URL with options that cannot be edited to the operator’s options alone', () => {
    const url = 'postgres://u:p@/handover?host=/var/run/postgresql&options=-c%20work_mem%3D64MB';
    expect(sessionOptions(url)).toEqual({ connectionString: url });
  });
});
