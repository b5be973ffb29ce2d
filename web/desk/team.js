// @ts-check
// The team panel, for supervisors: every agent with presence, whether at a desk, and load; an absent
// agent can be set away (chats stop going to them) or signed out everywhere, and the chats they hold
// put back in the waiting line for someone else to take.
import { h } from './dom.js';

/**
 * Renders the team into `container`.
 * @param agents the `agents` array of GET /v1/desk/team
 * @param chats the `chats` array of GET /v1/desk/team (chats held, with their agent)
 * @param selfId the signed-in supervisor (no buttons for themselves)
 * @param onAway (agent) => void
 * @param onSignOut (agent) => void
 * @param onReturn (chat) => void: put a held chat back in its queue
 */
export function renderTeam(container, { agents, chats = [], selfId, onAway, onSignOut, onReturn }) {
  if (agents.length === 0) return container.replaceChildren(h('li', { className: 'muted' }, 'No agents'));
  container.replaceChildren(
    ...agents.map((agent) => {
      // Online means at a desk: signed in with a console open (or closed moments ago).
      const state = !agent.signedIn ? 'signed out' : !agent.online ? 'no desk open' : agent.presence;
      const actions =
        agent.id === selfId
          ? []
          : [
              agent.presence === 'available'
                ? h(
                    'button',
                    { type: 'button', className: 'small', attrs: { 'aria-label': `Set ${agent.name} away` }, on: { click: () => onAway(agent) } },
                    'Set away',
                  )
                : null,
              agent.signedIn
                ? h(
                    'button',
                    { type: 'button', className: 'small', attrs: { 'aria-label': `Sign ${agent.name} out` }, on: { click: () => onSignOut(agent) } },
                    'Sign out',
                  )
                : null,
            ];
      return h(
        'li',
        { className: 'team-member', attrs: { 'data-agent-id': agent.id, 'data-state': state } },
        h('span', { className: 'name' }, agent.name, agent.role === 'supervisor' ? h('span', { className: 'small muted' }, ' (supervisor)') : null),
        h('span', { className: 'small muted' }, ` ${state} · ${agent.activeChats}/${agent.maxChats} chats`),
        h('span', { className: 'actions' }, ...actions),
        heldChats(
          chats.filter((chat) => chat.agentId === agent.id && agent.id !== selfId),
          onReturn,
        ),
      );
    }),
  );
}

function heldChats(chats, onReturn) {
  if (chats.length === 0) return null;
  return h(
    'ul',
    { className: 'held-chats' },
    ...chats.map((chat) => {
      const who = chat.userName || 'A user';
      return h(
        'li',
        { attrs: { 'data-handover-id': chat.id } },
        h('span', { className: 'small' }, `${who} (${chat.queue})`),
        h(
          'button',
          { type: 'button', className: 'small', attrs: { 'aria-label': `Return ${who} to the ${chat.queue} queue` }, on: { click: () => onReturn(chat) } },
          'Return to queue',
        ),
      );
    }),
  );
}
