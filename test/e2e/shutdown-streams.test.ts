import { describe, expect, it } from 'vitest';
import { openSseClient } from '../support/sse-client.js';
import { setUpDesk, startTestService } from '../support/test-service.js';

describe('shutdown with live streams open', () => {
  it('ends open SSE streams so the instance can stop instead of hanging until it is killed', async () => {
    const t = await startTestService('pglite');
    const desk = await setUpDesk(t);
    const bot = openSseClient(`${t.url}/v1/events`, { authorization: `Bearer ${desk.apiKey}` });
    const deskStream = openSseClient(`${t.url}/v1/desk/events`, { authorization: `Bearer ${desk.agentToken}` });
    expect(await bot.opened).toBe(200);
    expect(await deskStream.opened).toBe(200);
    // Without the streams being ended, app.close() waits on them forever and this exceeds the test timeout.
    const stopped = await Promise.race([t.close().then(() => 'stopped'), new Promise((r) => setTimeout(() => r('still waiting on open streams'), 10_000))]);
    expect(stopped).toBe('stopped');
    await bot.waitFor(() => bot.ended, 5000, 'the bot stream to end');
    await deskStream.waitFor(() => deskStream.ended, 5000, 'the desk stream to end');
  });
});
