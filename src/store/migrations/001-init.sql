-- The whole schema of the first release. Every row belongs to a tenant; every query is scoped by it.

create table tenants (
  id text primary key,
  name text not null,
  webhook_url text,
  webhook_secret text not null,
  created_at timestamptz not null default now()
);

-- API keys are high-entropy random strings, so a SHA-256 digest is a safe way to store them
-- (a slow password hash would only cost CPU on every request).
create table api_keys (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  key_hash text not null unique,
  key_hint text not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz,
  revoked_at timestamptz
);
create index api_keys_tenant on api_keys (tenant_id);

create table connectors (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  type text not null,
  name text not null,
  config jsonb not null,
  created_at timestamptz not null default now(),
  unique (tenant_id, name)
);

create table queues (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  name text not null,
  connector_id text references connectors (id),
  opening_hours jsonb,
  time_zone text not null default 'UTC',
  closed_dates jsonb not null default '[]',
  no_answer_timeout_seconds integer not null default 300,
  max_waiting integer not null default 50,
  created_at timestamptz not null default now(),
  unique (tenant_id, name)
);

create table agents (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  email text not null,
  name text not null,
  password_hash text not null,
  -- null: serves every queue of the tenant that has no connector
  queue_ids jsonb,
  max_chats integer not null default 3,
  presence text not null default 'away',
  presence_changed_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  unique (tenant_id, email)
);
create index agents_email on agents (lower(email));

create table agent_sessions (
  token_hash text primary key,
  agent_id text not null references agents (id) on delete cascade,
  tenant_id text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index agent_sessions_agent on agent_sessions (agent_id);

create table handovers (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  conversation_id text not null,
  queue_id text not null references queues (id),
  connector_id text references connectors (id),
  state text not null,
  user_info jsonb not null,
  transcript jsonb not null default '[]',
  metadata jsonb not null default '{}',
  idempotency_key text,
  agent_id text references agents (id),
  agent_info jsonb,
  -- the conversation's id in the external system, once the connector has opened it there
  external_ref text,
  end_reason text,
  -- last message sequence number; the row lock on it orders all writes of one handover
  last_seq bigint not null default 0,
  queue_position_at_start integer,
  created_at timestamptz not null default now(),
  queued_at timestamptz not null default now(),
  accepted_at timestamptz,
  ended_at timestamptz,
  answer_deadline timestamptz
);
-- At most one live handover per conversation.
create unique index handovers_one_live on handovers (tenant_id, conversation_id) where state <> 'ended';
create unique index handovers_idempotency on handovers (tenant_id, idempotency_key) where idempotency_key is not null;
create index handovers_waiting on handovers (queue_id, queued_at) where state = 'queued';
create index handovers_deadline on handovers (answer_deadline) where state = 'queued';
create index handovers_agent on handovers (agent_id) where state = 'active';
create index handovers_external_ref on handovers (connector_id, external_ref) where external_ref is not null;
create index handovers_recent_accepts on handovers (queue_id, accepted_at) where accepted_at is not null;

create table messages (
  id text primary key,
  tenant_id text not null,
  handover_id text not null references handovers (id) on delete cascade,
  seq bigint not null,
  -- to_agent: from the user (through the bot); to_user: from the agent
  direction text not null,
  client_id text,
  sender jsonb not null,
  text text not null,
  attachments jsonb not null default '[]',
  created_at timestamptz not null default now(),
  unique (handover_id, seq)
);
create unique index messages_client_id on messages (handover_id, direction, client_id) where client_id is not null;

-- Events for the bot: SSE stream, JSON poll and webhooks all read this log. `pos` is a per-tenant
-- position allocated from tenant_event_positions as the last write of the transaction; the row lock
-- is held until commit, so positions become visible in order and a reader resuming after a position
-- can never skip an event that commits later.
create table tenant_event_positions (
  tenant_id text primary key references tenants (id) on delete cascade,
  last_pos bigint not null default 0
);

create table events (
  id text primary key,
  tenant_id text not null,
  pos bigint not null,
  handover_id text not null,
  conversation_id text not null,
  type text not null,
  data jsonb not null,
  created_at timestamptz not null default now(),
  unique (tenant_id, pos)
);
create index events_handover on events (handover_id, pos);

-- The outbox. A lane is one ordered stream of work (one handover towards one side). Rows of a lane
-- are delivered strictly in seq order; lanes are independent. `outbox_lanes` holds one row per lane
-- with a pending counter, so workers claim lanes (FOR UPDATE SKIP LOCKED) instead of scanning rows.
create table outbox (
  id bigserial primary key,
  tenant_id text not null,
  lane text not null,
  seq bigint not null,
  handover_id text not null,
  target text not null,
  connector_id text,
  kind text not null,
  payload jsonb not null,
  max_attempts integer not null,
  state text not null default 'pending',
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  done_at timestamptz,
  unique (lane, seq)
);
create index outbox_lane_pending on outbox (lane, seq) where state = 'pending';

create table outbox_lanes (
  lane text primary key,
  tenant_id text not null,
  target text not null,
  connector_id text,
  last_seq bigint not null default 0,
  pending integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_by text,
  locked_until timestamptz
);
create index outbox_lanes_due on outbox_lanes (next_attempt_at) where pending > 0;

create table delivery_attempts (
  id bigserial primary key,
  outbox_id bigint not null references outbox (id) on delete cascade,
  attempt integer not null,
  started_at timestamptz not null,
  duration_ms integer not null,
  outcome text not null,
  status_code integer,
  error text
);
create index delivery_attempts_outbox on delivery_attempts (outbox_id);

-- Inbound webhook receipts: replay protection and idempotency by the sender's webhook id.
create table inbound_receipts (
  connector_id text not null,
  webhook_id text not null,
  received_at timestamptz not null default now(),
  primary key (connector_id, webhook_id)
);

create table settings (
  key text primary key,
  value jsonb not null
);
