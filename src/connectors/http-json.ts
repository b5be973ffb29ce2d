import type { Agent } from 'undici';
import { parseJson, send, STATUS_POLICIES, type HttpMethod, type OutboundCall } from '../outbound/index.js';
import { multipartForm, type FormFile } from '../outbound/multipart.js';

/** Responses read at most this far: vendor answers are small JSON documents. */
const MAX_RESPONSE_BYTES = 256 * 1024;

/** `body` is the vendor's JSON as the caller expects it: every field optional, read defensively. */
export interface JsonResponse<T = unknown> {
  status: number;
  body: T | null;
}

type JsonRequest = {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  signal: AbortSignal;
  accept?: number[];
  /** How an error names the call instead of the URL's path: for a path that carries an end user's id. */
  label?: string;
};

/**
 * One JSON call to a vendor API, through the one outbound client (src/outbound/send.ts): span and
 * `traceparent`, bounded read, Retry-After, and the vendor-API status policy (credentials an admin
 * configured: 401 and 403 are final). Resolves on 2xx and on the statuses the caller expects (`accept`,
 * e.g. 409 "already exists"); otherwise throws DeliveryError.
 */
export async function requestJson<T = unknown>(dispatcher: Agent, input: JsonRequest): Promise<JsonResponse<T>> {
  return vendorCall<T>(dispatcher, input, { json: input.body });
}

/**
 * One call with a `multipart/form-data` body (text fields and files) to a vendor API, answered with
 * JSON, under the same rules as requestJson.
 */
export async function requestForm<T = unknown>(
  dispatcher: Agent,
  input: Omit<JsonRequest, 'body'> & { fields: ReadonlyArray<readonly [string, string]>; files: readonly FormFile[] },
): Promise<JsonResponse<T>> {
  const form = multipartForm(input.fields, input.files);
  return vendorCall<T>(dispatcher, input, { body: form.body, contentType: form.contentType });
}

/** The call both share: the vendor-API policy, a bounded read, the answer's JSON. */
async function vendorCall<T>(
  dispatcher: Agent,
  input: Omit<JsonRequest, 'body'>,
  payload: Pick<OutboundCall, 'json'> | Required<Pick<OutboundCall, 'body' | 'contentType'>>,
): Promise<JsonResponse<T>> {
  const url = new URL(input.url);
  const answer = await send(dispatcher, {
    method: input.method,
    url: input.url,
    signal: input.signal,
    policy: STATUS_POLICIES.vendorApi,
    maxBytes: MAX_RESPONSE_BYTES,
    headers: input.headers,
    ...payload,
    ...(input.accept ? { accept: input.accept } : {}),
    describe: `${input.method} ${input.label ?? url.pathname} on ${url.host}`,
  });
  return { status: answer.status, body: (parseJson(answer.text) ?? null) as T | null };
}
