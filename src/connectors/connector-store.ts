import { isForeignKeyViolation, isUniqueViolation } from '../store/pg-errors.js';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import type { Queryable } from '../store/db.js';
import { newId } from '../store/ids.js';
import { AppError } from '../resilience/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Connector, ConnectorDefinition, ConnectorSessions } from './connector.js';
import { connectorSessions } from './connector-sessions.js';
import { checkOutboundUrl, type OutboundPolicy } from '../outbound/index.js';
import type { SecretBox } from '../config/secret-box.js';
import { Type } from '@sinclair/typebox';
import type { LatencyObjective } from '../resilience/connector-latency.js';
import { SingleFlight } from '../store/loading-cache.js';

/**
 * `latency` in any connector's config: its own latency objective (resilience/connector-latency.ts),
 * taken out before the type's own config is checked and given to the connector.
 */
const LatencyConfig = Type.Object(
  {
    callP99Ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000, description: 'Calls slower than this at p99 make the system `slow`.' })),
    lagP99Ms: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400_000, description: 'Deliveries later than this at p99 make it `slow` too.' })),
    offerWhileSlow: Type.Optional(Type.Boolean({ description: 'Keep offering handovers while it is slow.' })),
  },
  { additionalProperties: false },
);
const latencyValidator = TypeCompiler.Compile(LatencyConfig);

function splitLatency(config: unknown): { own: unknown; latency: Partial<LatencyObjective> | undefined } {
  if (!config || typeof config !== 'object' || Array.isArray(config) || !('latency' in config)) return { own: config, latency: undefined };
  const { latency, ...own } = config as Record<string, unknown>;
  return { own, latency: latency as Partial<LatencyObjective> };
}

export interface ConnectorRecord {
  id: string;
  tenantId: string;
  type: string;
  name: string;
  createdAt: Date;
}

/**
 * How long a live instance is used before its row is read again: a config changed through another
 * instance is picked up within this bound (this instance's own changes apply at once).
 */
const RECHECK_MS = 10_000;

interface CachedInstance {
  record: ConnectorRecord;
  connector: Connector;
  /** The stored config the instance was built from, to see whether the row changed. */
  configText: string;
  checkedAt: number;
}

interface ConnectorRow {
  id: string;
  tenant_id: string;
  type: string;
  name: string;
  config: Record<string, unknown>;
  created_at: Date;
}

/**
 * Connector rows and their live instances. Each row gets its own instance, created from its own
 * config, so one tenant's credentials never sit in an object another tenant's work goes through.
 */
export class Connectors {
  private readonly byType: Map<string, ConnectorDefinition<unknown>>;
  private readonly validators = new Map<string, ReturnType<typeof TypeCompiler.Compile>>();
  private readonly instances = new Map<string, CachedInstance>();
  /**
   * Reads of a connector's row under way: requests that need the same connector meanwhile wait for
   * that read instead of each reading it (a new instance's first deliveries, one per lane, all at once).
   */
  private readonly reading = new SingleFlight<string, CachedInstance>();
  private readonly changeListeners = new Set<(connectorId: string) => void>();

  constructor(
    private readonly q: Queryable,
    definitions: ConnectorDefinition<never>[],
    private readonly log: Logger,
    private readonly timeoutMs: number,
    private readonly secrets: SecretBox,
    /** Told each connector's own latency objective when its instance is built. */
    private readonly onLatencyObjective: (connectorId: string, objective: Partial<LatencyObjective> | undefined) => void = () => {},
  ) {
    this.byType = new Map(definitions.map((d) => [d.type, d as ConnectorDefinition<unknown>]));
  }

  /** Told each connector whose config this store changed (the delivery thread's store forgets its instance). */
  onChange(listener: (connectorId: string) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  /** Drops a connector's live instance: its next use reads the row and builds one anew. */
  forget(connectorId: string): void {
    this.instances.delete(connectorId);
    // A read under way may predate the change: its waiters get it, it is not kept.
    this.reading.drop(connectorId);
  }

  types(): string[] {
    return [...this.byType.keys()];
  }

  async add(input: { tenantId: string; type: string; name: string; config: unknown }, outbound?: OutboundPolicy): Promise<ConnectorRecord> {
    const definition = this.byType.get(input.type);
    if (!definition) throw new AppError('unknown_connector_type', { message: `No connector of type "${input.type}"; known: ${this.types().join(', ')}.` });
    this.validate(definition, input.config);
    if (outbound) checkUrlFields(definition, input.config as Record<string, unknown>, outbound);
    const id = newId('connector');
    try {
      const { rows } = await this.q.query<ConnectorRow>(
        'insert into connectors (id, tenant_id, type, name, config) values ($1, $2, $3, $4, $5::jsonb) returning *',
        [
          id,
          input.tenantId,
          input.type,
          input.name,
          JSON.stringify(this.secrets.sealConfig(input.config as Record<string, unknown>, definition.secretFields, id)),
        ],
      );
      return toRecord(rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('already_exists', { message: `A connector named "${input.name}" already exists.` });
      if (isForeignKeyViolation(err)) throw new AppError('tenant_not_found');
      throw err;
    }
  }

  async list(tenantId: string): Promise<ConnectorRecord[]> {
    const { rows } = await this.q.query<ConnectorRow>('select * from connectors where tenant_id = $1 order by name', [tenantId]);
    return rows.map(toRecord);
  }

  /** The live instance of a connector row; unknown ids are `connector_not_found`. */
  async get(connectorId: string): Promise<{ record: ConnectorRecord; connector: Connector }> {
    const cached = this.instances.get(connectorId);
    if (cached && Date.now() - cached.checkedAt < RECHECK_MS) return cached;
    return this.reading.run(
      connectorId,
      () => this.read(connectorId, cached),
      (entry) => this.instances.set(connectorId, entry),
    );
  }

  private async read(connectorId: string, cached: CachedInstance | undefined): Promise<CachedInstance> {
    const { rows } = await this.q.query<ConnectorRow>('select * from connectors where id = $1', [connectorId]);
    const row = rows[0];
    if (!row) {
      this.instances.delete(connectorId);
      throw new AppError('connector_not_found');
    }
    const configText = JSON.stringify(row.config);
    // Unchanged: keep the instance (and whatever it learned, such as ids it looked up).
    if (cached && cached.configText === configText && cached.record.name === row.name) {
      cached.checkedAt = Date.now();
      return cached;
    }
    const definition = this.byType.get(row.type);
    if (!definition) throw new AppError('connector_not_found', { message: `Connector type "${row.type}" is not available in this version.` });
    const record = toRecord(row);
    // Credentials are in clear only here, inside the instance that uses them.
    const { own, latency } = splitLatency(this.secrets.openConfig(row.config, definition.secretFields, row.id));
    this.onLatencyObjective(row.id, latency);
    const connector = definition.create(own as Record<string, unknown>, {
      connectorId: row.id,
      tenantId: row.tenant_id,
      log: this.log.child({ connectorId: row.id, connectorType: row.type }),
      timeoutMs: this.timeoutMs,
      sessions: this.sessions(row.tenant_id, row.id),
    });
    return { record, connector, configText, checkedAt: Date.now() };
  }

  /**
   * Changes a connector's name and/or config. The config given replaces the stored one, except that
   * secret fields left out keep their stored values, so credentials need not be sent again to change
   * a URL. The next use on this instance builds a new live instance; other instances follow within
   * RECHECK_MS.
   */
  async update(
    input: { tenantId: string; connectorId: string; name?: string | undefined; config?: Record<string, unknown> | undefined },
    outbound?: OutboundPolicy,
  ): Promise<ConnectorRecord> {
    const { rows } = await this.q.query<ConnectorRow>('select * from connectors where id = $1 and tenant_id = $2', [input.connectorId, input.tenantId]);
    const row = rows[0];
    if (!row) throw new AppError('connector_not_found');
    const definition = this.byType.get(row.type);
    if (!definition) throw new AppError('connector_not_found', { message: `Connector type "${row.type}" is not available in this version.` });
    let config = row.config;
    if (input.config) {
      const stored = this.secrets.openConfig(row.config, definition.secretFields, row.id);
      const kept = Object.fromEntries(definition.secretFields.filter((f) => !(f in input.config!) && f in stored).map((f) => [f, stored[f]]));
      const merged = { ...kept, ...input.config };
      this.validate(definition, merged);
      if (outbound) checkUrlFields(definition, merged, outbound);
      config = this.secrets.sealConfig(merged, definition.secretFields, row.id);
    }
    try {
      const updated = await this.q.query<ConnectorRow>('update connectors set name = $3, config = $4::jsonb where id = $1 and tenant_id = $2 returning *', [
        row.id,
        input.tenantId,
        input.name ?? row.name,
        JSON.stringify(config),
      ]);
      this.forget(row.id);
      for (const listener of this.changeListeners) listener(row.id);
      return toRecord(updated.rows[0]!);
    } catch (err) {
      if (isUniqueViolation(err)) throw new AppError('already_exists', { message: `A connector named "${input.name ?? row.name}" already exists.` });
      throw err;
    }
  }

  /**
   * Encrypts, under the current key, every stored credential that is in clear (rows from versions
   * before encryption) or under an older key (after a rotation). Run at start; rows are updated one
   * by one, only when they still hold what was read, so instances starting together do not clash.
   */
  async sealStoredSecrets(): Promise<number> {
    const { rows } = await this.q.query<ConnectorRow>('select * from connectors');
    let sealed = 0;
    for (const row of rows) {
      const definition = this.byType.get(row.type);
      if (!definition || !this.secrets.needsSealing(row.config, definition.secretFields)) continue;
      const config = this.secrets.resealConfig(row.config, definition.secretFields, row.id);
      const result = await this.q.query('update connectors set config = $2::jsonb where id = $1 and config = $3::jsonb', [
        row.id,
        JSON.stringify(config),
        JSON.stringify(row.config),
      ]);
      sealed += result.rowCount;
    }
    return sealed + (await this.resealSessionCredentials());
  }

  /** Conversation credentials (Salesforce tokens) under an older key, sealed again under the current one. */
  private async resealSessionCredentials(): Promise<number> {
    const { rows } = await this.q.query<{ handover_id: string; tenant_id: string; connector_id: string; credential: string }>(
      `select handover_id, tenant_id, connector_id, credential from connector_sessions where credential is not null and case when credential like '{%' then (credential::jsonb->>'kid') is distinct from $1 else true end`,
      [this.secrets.currentKeyId],
    );
    let resealed = 0;
    for (const row of rows) {
      const sessions = this.sessions(row.tenant_id, row.connector_id);
      const session = await sessions.load(row.handover_id);
      if (!session?.credential) continue;
      await sessions.save(row.handover_id, { credential: session.credential });
      resealed++;
    }
    return resealed;
  }

  /** Id of the key new and re-encrypted credentials are sealed with. */
  currentKeyId(): string {
    return this.secrets.currentKeyId;
  }

  /** The per-handover sessions of one connector (credentials sealed with this store's keys). */
  sessions(tenantId: string, connectorId: string): ConnectorSessions {
    return connectorSessions(this.q, tenantId, connectorId, this.secrets);
  }

  private validate(definition: ConnectorDefinition<unknown>, whole: unknown): void {
    const { own: config, latency } = splitLatency(whole);
    if (latency !== undefined && !latencyValidator.Check(latency)) {
      const problems = [...latencyValidator.Errors(latency)].slice(0, 10).map((e) => `config.latency${e.path.replaceAll('/', '.')}: ${e.message}`);
      throw new AppError('invalid_connector_config', {
        message: `The connector's latency objective is invalid: ${problems.join('; ')}`,
        details: { problems },
      });
    }
    let validator = this.validators.get(definition.type);
    if (!validator) {
      validator = TypeCompiler.Compile(definition.configSchema);
      this.validators.set(definition.type, validator);
    }
    if (validator.Check(config)) return;
    const problems = [...validator.Errors(config)].slice(0, 10).map((e) => `config${e.path.replaceAll('/', '.')}: ${e.message}`);
    throw new AppError('invalid_connector_config', {
      message: `The ${definition.type} connector config is invalid: ${problems.join('; ')}`,
      details: { problems },
    });
  }
}

function toRecord(row: ConnectorRow): ConnectorRecord {
  return { id: row.id, tenantId: row.tenant_id, type: row.type, name: row.name, createdAt: row.created_at };
}

/** The URLs of a config this service will call, checked against the outbound policy (SSRF). */
function checkUrlFields(definition: ConnectorDefinition<unknown>, config: Record<string, unknown>, outbound: OutboundPolicy): void {
  for (const field of definition.urlFields ?? []) {
    const value = config[field];
    if (typeof value === 'string') checkOutboundUrl(value, outbound, `config.${field}`);
  }
}
