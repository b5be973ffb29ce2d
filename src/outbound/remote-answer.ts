import { DeliveryError } from './delivery-error.js';
import { storableText } from '../store/storable-text.js';

/** How much of a refusing answer's body is quoted beside the error, when quoting is allowed. */
const QUOTE_CHARS = 200;
/** Top-level field names named at most. */
const MAX_KEYS = 10;
/** A field name as it appears in vendors' JSON: one word, no spaces. */
const FIELD_NAME = /^[A-Za-z_$][A-Za-z0-9_$.-]{0,63}$/;
/**
 * An error code: one short token with a letter in it (`RecordInvalid`, `bad_request`, `INVALID_FIELD`),
 * or a small number (`409`, `10021`). Digits alone beyond that may be the user's own data echoed back
 * (a card or phone number), and are left out.
 */
const CODE = /^(?=[^\s]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_.:-]{0,39}$/;
const MAX_NUMERIC_CODE = 99_999;
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;

type Headers = Record<string, string | string[] | undefined>;

/** A non-2xx answer of a remote system, as read (the body bounded by the caller). */
export interface RemoteAnswer {
  status: number;
  headers: Headers;
  text: string;
}

/**
 * The DeliveryError for a refusing answer: `<what> answered <status> (<description>)`, with the start of
 * the body kept beside it as the error's `answerQuote` (see `failureText`), never in the message.
 */
export function answerError(what: string, answer: RemoteAnswer, options: { retryable: boolean; retryAfterMs?: number | undefined }): DeliveryError {
  return new DeliveryError(`${what} answered ${answer.status} (${describeAnswer(answer.headers, answer.text)})`, {
    retryable: options.retryable,
    statusCode: answer.status,
    ...(options.retryAfterMs !== undefined ? { retryAfterMs: options.retryAfterMs } : {}),
    ...(answer.text !== '' ? { answerQuote: storableText(answer.text.slice(0, QUOTE_CHARS)) } : {}),
  });
}

/**
 * An answer's body in words that carry none of its free text, still useful to whoever reads the log at
 * night: its media type and size, and for JSON the names of its top-level fields and a vendor error
 * code when one is plainly there (`{"error":"RecordInvalid"}`, `{"code":"conflict"}`,
 * `{"errors":[{"code":"bad_request"}]}`, `[{"errorCode":"INVALID_FIELD"}]`). Names and codes are kept
 * only when they are single tokens; anything with a space is free text and left out.
 */
export function describeAnswer(headers: Headers, text: string): string {
  const parts: string[] = [];
  const mediaType = headerValue(headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (mediaType && MEDIA_TYPE.test(mediaType)) parts.push(mediaType);
  if (text === '') return [...parts, 'no body'].join(', ');
  const declared = Number(headerValue(headers, 'content-length'));
  const bytes = Number.isSafeInteger(declared) && declared > 0 ? declared : Buffer.byteLength(text);
  parts.push(`${bytes} byte${bytes === 1 ? '' : 's'}`);
  const json = parseJson(text);
  if (Array.isArray(json)) {
    parts.push(`a JSON array of ${json.length}`);
  } else if (isObject(json)) {
    const keys = Object.keys(json);
    const named = keys.filter((k) => FIELD_NAME.test(k)).slice(0, MAX_KEYS);
    if (keys.length > 0)
      parts.push(`keys: ${named.join(', ')}${keys.length > named.length ? `${named.length > 0 ? ', ' : ''}${keys.length - named.length} more` : ''}`);
  }
  const code = json === undefined ? undefined : vendorCode(json);
  if (code !== undefined) parts.push(`code: ${code}`);
  return parts.join(', ');
}

/** The error code vendors put in well-known places; undefined when there is none or it is not a token. */
function vendorCode(json: unknown): string | undefined {
  const first = Array.isArray(json) ? json[0] : json;
  if (!isObject(first)) return undefined;
  const errors = Array.isArray(first.errors) ? first.errors[0] : undefined;
  const nested = isObject(first.error) ? first.error : isObject(errors) ? errors : undefined;
  const candidates = [first.code, first.errorCode, first.error_code, first.error, nested?.code, nested?.errorCode, nested?.type];
  for (const value of candidates) {
    if (typeof value === 'number' && Number.isSafeInteger(value) && Math.abs(value) <= MAX_NUMERIC_CODE) return String(value);
    if (typeof value === 'string' && CODE.test(value)) return value;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The one reader of JSON from outside: the document, or undefined when the text is empty or is not
 * JSON. Never throws: a parser's message quotes the text, and an answer may quote a user's message.
 */
export function parseJson(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** The value of a header that may arrive repeated. */
export function headerValue(headers: Headers, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
