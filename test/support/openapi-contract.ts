import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

/**
 * Checks answers against the service's own OpenAPI document: the status must be documented for the
 * operation, the body must match the documented schema of its media type, an error's code must be one
 * of those documented for that status, and documented required headers (Retry-After, Location) must be
 * there. Answers to paths the document does not describe (the console's files, /docs) are not checked.
 */
export interface Contract {
  /** Problems with one answer (none: it conforms). */
  check(answer: { method: string; path: string; status: number; headers: Headers; body: string }): string[];
  /** Operations (`METHOD /template`) checked at least once, with the statuses seen. */
  readonly seen: Map<string, Set<number>>;
  /** Every documented operation, as `METHOD /template`. */
  readonly operations: string[];
}

type Json = Record<string, any>;

export function contractOf(spec: Json): Contract {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ ...spec, $id: 'openapi' });
  const validators = new Map<string, ValidateFunction>();
  const validatorAt = (pointer: string) => {
    let v = validators.get(pointer);
    if (!v) {
      v = ajv.getSchema(`openapi#${pointer}`);
      if (!v) throw new Error(`no schema at ${pointer}`);
      validators.set(pointer, v);
    }
    return v;
  };
  const resolve = (node: Json): Json => {
    if (typeof node?.$ref !== 'string') return node;
    return node.$ref
      .slice(2)
      .split('/')
      .reduce((at: Json, key: string) => at[key.replace(/~1/g, '/').replace(/~0/g, '~')], spec);
  };
  const templates = Object.keys(spec.paths).map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+')}$`),
  }));
  const operations = templates.flatMap(({ template }) =>
    Object.keys(spec.paths[template])
      .filter((m) => ['get', 'put', 'post', 'delete', 'patch'].includes(m))
      .map((m) => `${m.toUpperCase()} ${template}`),
  );
  const seen = new Map<string, Set<number>>();
  const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

  return {
    seen,
    operations,
    check({ method, path, status, headers, body }) {
      const bare = path.split('?')[0]!;
      // A literal path wins over a template (/v1/desk/handovers vs /v1/desk/handovers/{id}).
      const match = templates.find((t) => t.template === bare) ?? templates.find((t) => t.pattern.test(bare));
      const op = match && spec.paths[match.template][method.toLowerCase()];
      if (!match || !op) return [];
      const name = `${method.toUpperCase()} ${match.template}`;
      if (!seen.has(name)) seen.set(name, new Set());
      seen.get(name)!.add(status);
      const key = String(status);
      const response = op.responses[key] ? resolve(op.responses[key]) : undefined;
      if (!response) return [`${name}: status ${status} is not documented (documented: ${Object.keys(op.responses).join(', ')}); body ${body.slice(0, 300)}`];
      const problems: string[] = [];
      for (const [header, definition] of Object.entries<Json>(response.headers ?? {})) {
        if (resolve(definition).required && !headers.has(header)) problems.push(`${name} ${status}: the documented header ${header} is missing`);
      }
      const type = (headers.get('content-type') ?? '').split(';')[0]!.trim();
      if (!response.content) {
        if (body.length > 0) problems.push(`${name} ${status}: documented without a body, answered ${type} ${body.slice(0, 200)}`);
        return problems;
      }
      const media = response.content[type];
      if (!media) return [...problems, `${name} ${status}: content type "${type}" is not documented (${Object.keys(response.content).join(', ')})`];
      if (type !== 'application/json') return problems;
      let parsed: unknown;
      try {
        parsed = JSON.parse(body);
      } catch {
        return [...problems, `${name} ${status}: the body is not JSON: ${body.slice(0, 200)}`];
      }
      const validate = validatorAt(`/paths/${escape(match.template)}/${method.toLowerCase()}/responses/${key}/content/${escape(type)}/schema`);
      if (!validate(parsed))
        problems.push(`${name} ${status}: the body does not match its schema: ${ajv.errorsText(validate.errors)}; body ${body.slice(0, 300)}`);
      const code = (parsed as { error?: { code?: string } }).error?.code;
      if (status >= 400 && media.examples && code !== undefined && !(code in media.examples)) {
        problems.push(`${name} ${status}: error code ${code} is not documented for this status (documented: ${Object.keys(media.examples).join(', ')})`);
      }
      return problems;
    },
  };
}

/** Checks a whole stream of bot events (SSE `data`, JSON poll) against the document's BotEvent. */
export function botEventValidator(spec: Json): (event: unknown) => string | null {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addSchema({ ...spec, $id: 'openapi' });
  const validate = ajv.getSchema('openapi#/components/schemas/BotEvent')!;
  return (event) => (validate(event) ? null : ajv.errorsText(validate.errors));
}
