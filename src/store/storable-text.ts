/** Half of a UTF-16 surrogate pair: it names no character, and PostgreSQL refuses it in text and jsonb. */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

/**
 * Text as PostgreSQL can store it and a log line can show it: half a surrogate pair becomes U+FFFD, and
 * NUL and the other control characters (but tab, newline and return) become spaces. For text that comes
 * from outside and must be kept whatever it holds — a remote system's answer, a helpdesk's message:
 * unrepaired, one such character made a failure unstorable (and its delivery retried at once, for ever)
 * or refused a vendor's whole batch.
 */
export function storableText(text: string): string {
  return text.replace(LONE_SURROGATES, '\uFFFD').replace(CONTROL_CHARACTERS, ' ');
}
