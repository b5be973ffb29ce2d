import { toError } from '../resilience/errors.js';
import type { CheckFailure } from './check-call.js';
import type { Connector, ConnectorCheck, SetupContext, SetupItem } from './connector.js';
import { failureText } from './connector-helpers.js';

/** What `handover connectors setup` shows for one connector. */
export interface SetupReport {
  check: ConnectorCheck;
  items: SetupItem[];
  /** The setup stopped here (a vendor call failed or ran out of time); the items before it stand. */
  failure: string | null;
}

export interface SetupOptions extends Omit<SetupContext, 'report'> {
  /** Deadline of the check, and of the whole setup (several calls in a row). */
  checkTimeoutMs: number;
  setupTimeoutMs: number;
  /** A failure may quote the system's answer (off with HANDOVER_REDACT_CONTENT). */
  quoteAnswers: boolean;
}

/**
 * Runs a connector's own check, then its setup, each bounded in time. A failing vendor call is reported
 * as the setup's `failure`, not thrown: an operator asked, and the answer says what the system said. A
 * failing check stops before the setup (with credentials refused nothing else can be read).
 */
export async function runConnectorSetup(connector: Connector, options: SetupOptions): Promise<SetupReport> {
  const quote = { quoteAnswers: options.quoteAnswers };
  let check: ConnectorCheck;
  try {
    check = connector.check
      ? await connector.check(AbortSignal.timeout(options.checkTimeoutMs))
      : { verdict: 'unchecked', reason: 'this connector has no check' };
  } catch (err) {
    check = { verdict: 'failing', problem: 'unreachable', reason: `the check failed: ${failureText(toError(err), quote)}` };
  }
  if (check.verdict === 'failing') {
    const cause = (check as CheckFailure).error;
    const quoted = cause && options.quoteAnswers ? failureText(cause, quote) : '';
    const reason =
      cause && quoted.startsWith(`${cause.message}: `)
        ? `${check.reason} (answer: ${quoted.slice(cause.message.length + 2, cause.message.length + 202)})`
        : check.reason;
    return {
      check: { verdict: 'failing', problem: check.problem, reason },
      items: [],
      failure: connector.setup ? 'the vendor settings were not read: the setup check failed' : null,
    };
  }
  if (!connector.setup) return { check, items: [], failure: null };
  const items: SetupItem[] = [];
  const report = (item: SetupItem) => void items.push(item);
  try {
    await connector.setup(
      { inboundUrl: options.inboundUrl, apply: options.apply, irreversible: options.apply && options.irreversible, report },
      AbortSignal.timeout(options.setupTimeoutMs),
    );
    return { check, items, failure: null };
  } catch (err) {
    return { check, items, failure: failureText(toError(err), quote) };
  }
}
