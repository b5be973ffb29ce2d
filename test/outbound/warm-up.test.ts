import { describe, expect, it } from 'vitest';
import { warmUpDelivery } from '../../src/outbound/warm-up.js';
import { describeHandles, watchHandles } from '../support/open-handles.js';

describe('the delivery warm-up at start', () => {
  it('makes the calls it is asked for, to a server of its own, and leaves nothing open', async () => {
    const watch = watchHandles();
    const result = await warmUpDelivery(40);
    expect(result.calls).toBe(40);
    expect(describeHandles(await watch.settled())).toBe('');
    watch.end();
  });
});
