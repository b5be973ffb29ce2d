// @ts-check
// Canned responses: the picker `/` opens in a reply box, and the panel where the agent keeps their own
// (and a supervisor the whole team's). Placeholders such as {{user.name}} are filled by the server from
// the chat the reply is for (`rendered`), so what is inserted is what the user will read.
import { h } from './dom.js';

const PICKER_SIZE = 8;
// A `/` at the start of the box or after a space, then the shortcut typed so far, up to the cursor.
const TRIGGER = /(^|\s)\/([\w.-]{0,40})$/;

/**
 * Adds the `/` picker to a chat's reply box: `/` then letters searches the canned responses; ↑/↓
 * choose, Enter or Tab inserts (in place of the `/…` typed), Escape closes.
 * @param {HTMLTextAreaElement} input the textarea
 * @param {{ api: import('./api.js').Api, handoverId: string, onInsert?: () => void }} ctx
 */
export function attachCannedPicker(input, { api, handoverId, onInsert }) {
  const listId = `canned-${handoverId}`;
  const list = h('ul', { id: listId, className: 'canned-picker', hidden: true, attrs: { role: 'listbox', 'aria-label': 'Canned responses' } });
  input.setAttribute('aria-controls', listId);
  input.setAttribute('aria-autocomplete', 'list');
  input.parentElement?.classList.add('has-picker');
  input.insertAdjacentElement('beforebegin', list);
  let items = [];
  let active = 0;
  let trigger = null; // { start, end } of the `/…` being replaced
  let reads = 0;

  const close = () => {
    list.hidden = true;
    items = [];
    trigger = null;
    input.removeAttribute('aria-activedescendant');
  };

  const render = () => {
    list.replaceChildren(
      ...(items.length
        ? items.map((item, i) =>
            h(
              'li',
              {
                id: `${listId}-${i}`,
                className: `canned-option${i === active ? ' active' : ''}`,
                attrs: { role: 'option', 'aria-selected': String(i === active), 'data-shortcut': item.shortcut },
                on: { mousedown: (e) => (e.preventDefault(), insert(i)) },
              },
              h('span', { className: 'shortcut' }, `/${item.shortcut}`),
              h('span', { className: 'preview' }, item.rendered ?? item.text),
            ),
          )
        : [h('li', { className: 'muted small', attrs: { role: 'option', 'aria-disabled': 'true' } }, 'No canned response matches')]),
    );
    list.hidden = false;
    if (items.length) input.setAttribute('aria-activedescendant', `${listId}-${active}`);
    else input.removeAttribute('aria-activedescendant');
  };

  const search = async () => {
    const before = input.value.slice(0, input.selectionStart ?? input.value.length);
    const match = TRIGGER.exec(before);
    if (!match || input.selectionStart !== input.selectionEnd) return close();
    trigger = { start: before.length - match[2].length - 1, end: before.length };
    const read = ++reads;
    try {
      const query = `q=${encodeURIComponent(match[2])}&limit=${PICKER_SIZE}&handoverId=${encodeURIComponent(handoverId)}`;
      const { cannedResponses } = await api('GET', `/v1/desk/canned-responses?${query}`);
      // Only the answer to the latest keystroke is shown.
      if (read !== reads || !trigger) return;
      items = cannedResponses;
      active = 0;
      render();
    } catch {
      if (read === reads) close();
    }
  };

  const insert = (i) => {
    const item = items[i];
    if (!item || !trigger) return close();
    const text = item.rendered ?? item.text;
    const { start, end } = trigger;
    input.value = input.value.slice(0, start) + text + input.value.slice(end);
    const cursor = start + text.length;
    input.setSelectionRange(cursor, cursor);
    close();
    input.focus();
    onInsert?.();
  };

  input.addEventListener('input', () => void search());
  input.addEventListener('blur', () => setTimeout(close, 150));
  // Capture: the picker takes Enter, Tab and the arrows before the box's own keys (Enter sends).
  input.addEventListener(
    'keydown',
    (e) => {
      if (list.hidden) return;
      const keys = { ArrowDown: 1, ArrowUp: -1 };
      if (e.key in keys && items.length) {
        active = (active + keys[e.key] + items.length) % items.length;
        render();
      } else if ((e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey && items.length) {
        insert(active);
      } else if (e.key === 'Escape') {
        close();
      } else {
        return;
      }
      e.preventDefault();
      e.stopImmediatePropagation();
    },
    { capture: true },
  );
  return { close };
}

/**
 * The panel of canned responses: the agent's own and the team's, a form to add one (supervisors may
 * add one for the whole team), and Delete where the agent may.
 * @param container the panel's element
 * @param {{ api: import('./api.js').Api, agent: () => { id: string, role: string }, notify: (text: string) => void, showError: (text: string) => void }} ctx
 *   `agent()`: the signed-in agent
 */
export function createCannedPanel(container, { api, agent, notify, showError }) {
  const shortcut = h('input', { id: 'canned-shortcut', required: true, maxLength: 40, pattern: '[A-Za-z0-9][A-Za-z0-9_.\\-]*', placeholder: 'refund' });
  const text = h('textarea', { id: 'canned-text', required: true, maxLength: 5000, rows: 3, placeholder: 'Hi {{user.name}}, …' });
  const scope = h('select', { id: 'canned-scope' }, h('option', { value: 'personal' }, 'Only me'), h('option', { value: 'tenant' }, 'Everyone in the team'));
  const scopeRow = h('p', { className: 'canned-scope-row' }, h('label', { attrs: { for: 'canned-scope' } }, 'For '), scope);
  const list = h('ul', { className: 'canned-list' });
  const form = h(
    'form',
    { className: 'canned-form', on: { submit: (e) => (e.preventDefault(), void add()) } },
    h('label', { attrs: { for: 'canned-shortcut' } }, 'Shortcut'),
    shortcut,
    h('label', { attrs: { for: 'canned-text' } }, 'Text'),
    text,
    h('p', { className: 'small muted' }, 'Placeholders: {{user.name}}, {{user.email}}, {{agent.name}}. Type / and the shortcut in a reply to insert it.'),
    scopeRow,
    h('button', { type: 'submit' }, 'Add canned response'),
  );
  container.replaceChildren(h('details', {}, h('summary', {}, 'Canned responses'), form, list));

  const mayChange = (item) => item.scope === 'personal' || agent()?.role === 'supervisor';

  async function load() {
    scopeRow.hidden = agent()?.role !== 'supervisor';
    try {
      const { cannedResponses } = await api('GET', '/v1/desk/canned-responses?limit=100');
      list.replaceChildren(
        ...(cannedResponses.length
          ? cannedResponses.map((item) =>
              h(
                'li',
                { attrs: { 'data-canned-id': item.id } },
                h('span', { className: 'shortcut' }, `/${item.shortcut}`),
                h('span', { className: 'small muted' }, item.scope === 'tenant' ? ' team' : ' mine'),
                h('p', { className: 'small preview' }, item.text),
                mayChange(item)
                  ? h(
                      'button',
                      { type: 'button', className: 'small', attrs: { 'aria-label': `Delete /${item.shortcut}` }, on: { click: () => void remove(item) } },
                      'Delete',
                    )
                  : null,
              ),
            )
          : [h('li', { className: 'muted small' }, 'None yet')]),
      );
    } catch (err) {
      if (err.status !== 401) showError(err.message);
    }
  }

  async function add() {
    try {
      const created = await api('POST', '/v1/desk/canned-responses', {
        shortcut: shortcut.value.trim(),
        text: text.value,
        scope: scopeRow.hidden ? 'personal' : scope.value,
      });
      shortcut.value = '';
      text.value = '';
      notify(`Canned response /${created.shortcut} added.`);
      await load();
    } catch (err) {
      showError(err.code === 'already_exists' ? `The shortcut /${shortcut.value.trim()} is taken.` : err.message);
    }
  }

  async function remove(item) {
    try {
      await api('DELETE', `/v1/desk/canned-responses/${encodeURIComponent(item.id)}`);
      notify(`Canned response /${item.shortcut} deleted.`);
    } catch (err) {
      showError(err.message);
    }
    await load();
  }

  return { load, clear: () => list.replaceChildren() };
}
