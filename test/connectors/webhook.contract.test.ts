import { startGenericHelpdesk } from '../fakes/generic-helpdesk.js';
import { firstArrivals } from '../support/receivers.js';
import { runConnectorContract, type ContractDriver, type InboundAnswer, type ReceivedByHelpdesk } from './contract.js';

const SECRET = 'whsec_' + Buffer.from('contract-helpdesk-secret-32-bytes!!').toString('base64');
const FORGED = 'whsec_' + Buffer.from('somebody-else-entirely-0000000000').toString('base64');

/**
 * The generic webhook connector, one event per call or in batch mode (the fake then refuses any call
 * that is not a batch, and checks the signature over the batch body).
 */
function genericWebhookDriver(mode: 'single' | 'batch'): ContractDriver {
  return {
    name: mode === 'batch' ? 'generic webhook in batch mode' : 'generic webhook',
    capabilities: { userTyping: true, agentTyping: true, transfer: true, explicitJoin: true, manyHandovers: true },
    async start() {
      const helpdesk = await startGenericHelpdesk(SECRET, { batch: mode === 'batch' });
      let down = false;
      let last: { event: { type: string; handoverId: string; data?: unknown }; webhookId: string } | null = null;
      const send = async (
        event: { type: string; handoverId: string; data?: unknown },
        webhookId = `hd_${Math.random().toString(36).slice(2)}`,
      ): Promise<InboundAnswer> => {
        last = { event, webhookId };
        return helpdesk.send(event, { webhookId });
      };
      return {
        type: 'webhook',
        config: { url: helpdesk.url, secret: SECRET, availabilityUrl: `${helpdesk.url}/availability`, ...(mode === 'batch' ? { batch: {} } : {}) },
        secrets: [SECRET],
        connected(connector) {
          helpdesk.inboundUrl = connector.inboundUrl;
        },
        received(handoverId) {
          return firstArrivals(helpdesk.received.map((r) => r.body))
            .filter((b) => b.handoverId === handoverId)
            .flatMap((b): ReceivedByHelpdesk[] => {
              const data = b.data as Record<string, any>;
              switch (b.type) {
                case 'handover.requested':
                  return [{ kind: 'handover.requested', userId: data.user?.id, queue: data.queue, transcript: data.transcript, metadata: data.metadata }];
                case 'message.created':
                  return [{ kind: 'message', text: data.message.text }];
                case 'user.typing':
                  return [{ kind: 'typing', typing: data.typing }];
                case 'handover.ended':
                  return [{ kind: 'ended' }];
                default:
                  return [];
              }
            });
        },
        agent: {
          join: (handoverId, agent) => send({ type: 'agent.joined', handoverId, data: { agent } }),
          send: (handoverId, message) => send({ type: 'message.created', handoverId, data: { message } }),
          typing: (handoverId, typing) => send({ type: 'agent.typing', handoverId, data: { typing } }),
          transfer: (handoverId, to) => send({ type: 'handover.transferred', handoverId, data: { queue: to } }),
          end: (handoverId) => send({ type: 'handover.ended', handoverId, data: { reason: 'agent_ended' } }),
          resendLast: () => send(last!.event, last!.webhookId),
          forge: (handoverId) =>
            helpdesk.send({ type: 'message.created', handoverId, data: { message: { id: 'forged', text: 'forged' } } }, { secret: FORGED }),
        },
        setDown(isDown) {
          down = isDown;
          helpdesk.respond = () => ({ status: down ? 503 : 200 });
        },
        problems: () => helpdesk.rejected.map((r) => r.reason),
        setAgentsOnline(agentsOnline) {
          helpdesk.answerGet = (path) => (path === '/availability' && !down ? { status: 200, body: { agentsOnline } } : { status: 503, body: {} });
        },
        close: () => helpdesk.close(),
      };
    },
  };
}

runConnectorContract(genericWebhookDriver('single'));
// Batch mode changes the wire, not the store: one store is enough (single mode runs on both).
runConnectorContract(genericWebhookDriver('batch'), { stores: ['pg'] });
