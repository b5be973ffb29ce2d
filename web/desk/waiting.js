// @ts-check
// The waiting list: per queue, who waits (longest first), for how long (ticking live), their place in
// line, and what they last told the bot.
import { clear, formatDuration, formatEstimate, h } from './dom.js';
import { displayName } from './chat.js';

/**
 * Renders the list into `container`.
 * @param queues [{ id, name, waiting }] from GET /v1/desk/queues
 * @param waiting the `waiting` array of GET /v1/desk/handovers
 * @param fetchedAt Date.now() when `waiting` was read (wait times count on from there)
 * @param fresh ids that just arrived (highlighted)
 * @param onAccept (handover) => void
 */
export function renderWaiting(container, { queues, waiting, fetchedAt, fresh, onAccept }) {
  const byQueue = new Map(queues.map((q) => [q.id, []]));
  for (const hv of waiting) {
    if (!byQueue.has(hv.queueId)) byQueue.set(hv.queueId, []);
    byQueue.get(hv.queueId).push(hv);
  }
  // Entries that look the same keep their element: the list is re-read on every signal, and a button
  // replaced between mouse-down and mouse-up would swallow the agent's click (and their focus).
  const previous = renderedItems.get(container) ?? new Map();
  const items = new Map();
  let changed = false;
  for (const hv of waiting) {
    const isNew = fresh.has(hv.id);
    const key = JSON.stringify([displayName(hv), hv.queueId, hv.position, hv.estimatedWaitSeconds, hv.transcript.length, isNew]);
    let entry = previous.get(hv.id);
    if (!entry || entry.key !== key) {
      entry = { key, li: waitingItem(hv, fetchedAt, isNew, onAccept) };
      changed = true;
    } else {
      entry.li.querySelector('.wait').dataset.since = String(fetchedAt - hv.waitingSeconds * 1000);
    }
    items.set(hv.id, entry);
  }
  renderedItems.set(container, items);
  const layout = JSON.stringify([...byQueue].map(([queueId, list]) => [queueId, queueName(queues, queueId, list), list.map((hv) => hv.id)]));
  if (!changed && layouts.get(container) === layout) return tickWaiting(container);
  layouts.set(container, layout);

  const focusedId = /** @type {HTMLElement | null} */ (document.activeElement)?.dataset?.acceptId;
  clear(container);
  for (const [queueId, list] of byQueue) {
    const headingId = `queue-${queueId}`;
    container.append(
      h(
        'section',
        { className: 'queue', attrs: { 'aria-labelledby': headingId } },
        h('h3', { id: headingId }, queueName(queues, queueId, list), ' ', h('span', { className: 'count' }, `(${list.length})`)),
        list.length === 0
          ? h('p', { className: 'muted' }, 'Nobody waiting')
          : h(
              'ul',
              { className: 'waiting-list' },
              list.map((hv) => items.get(hv.id).li),
            ),
      ),
    );
  }
  if (focusedId) container.querySelector(`[data-accept-id="${CSS.escape(focusedId)}"]`)?.focus();
  tickWaiting(container);
}

const renderedItems = new WeakMap(); // container → Map(handover id → { key, li })
const layouts = new WeakMap(); // container → the queues and ids last rendered, in order

function queueName(queues, queueId, list) {
  return queues.find((q) => q.id === queueId)?.name ?? list[0]?.queue ?? queueId;
}

function waitingItem(hv, fetchedAt, isNew, onAccept) {
  const name = displayName(hv);
  const lastUserLine = [...hv.transcript].reverse().find((t) => t.role === 'user')?.text;
  const estimate = formatEstimate(hv.estimatedWaitSeconds);
  return h(
    'li',
    { className: `waiting-item${isNew ? ' new' : ''}`, attrs: { 'data-handover-id': hv.id } },
    h(
      'div',
      { className: 'who' },
      h('strong', {}, name),
      isNew ? h('span', { className: 'badge new-badge' }, 'new') : null,
      h(
        'span',
        { className: 'wait', attrs: { 'data-since': String(fetchedAt - hv.waitingSeconds * 1000), 'aria-label': 'waiting for' } },
        formatDuration(hv.waitingSeconds),
      ),
    ),
    h('div', { className: 'muted small' }, `#${hv.position ?? '?'} in line`, estimate ? ` · estimate ${estimate}` : ''),
    lastUserLine ? h('p', { className: 'preview' }, lastUserLine) : null,
    h(
      'button',
      { type: 'button', className: 'primary', attrs: { 'data-accept-id': hv.id, 'aria-label': `Accept ${name}` }, on: { click: () => onAccept(hv) } },
      'Accept',
    ),
  );
}

/** Advances every shown wait time; called each second (a local clock, not a request). */
export function tickWaiting(container) {
  const now = Date.now();
  for (const el of container.querySelectorAll('.wait[data-since]')) {
    el.textContent = formatDuration((now - Number(el.dataset.since)) / 1000);
  }
}
