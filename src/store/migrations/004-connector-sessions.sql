-- Per-handover state of connectors that keep a session with the external system, and the lease of
-- that session's event stream. Salesforce Messaging: the conversation's own access token (a new token
-- cannot reach an old conversation) and the last applied event id of its SSE stream. Any instance may
-- deliver the next item or hold the stream, so this lives here, not in memory.
create table connector_sessions (
  handover_id text primary key references handovers (id) on delete cascade,
  tenant_id text not null,
  connector_id text not null references connectors (id) on delete cascade,
  -- the conversation's id on the other side
  external_id text not null,
  -- SECRET: a bearer credential for this one conversation. Never logged, never returned by any API;
  -- kept in its own column so it can be encrypted at rest with the other connector secrets.
  credential text,
  -- the last stream event applied; a new holder resumes after it (Last-Event-ID)
  stream_position text,
  -- true once the conversation exists on the other side and its events must be read
  stream_open boolean not null default false,
  -- the lease: exactly one instance holds the stream; another may take it once the lease has run out
  stream_holder text,
  stream_lease_until timestamptz,
  updated_at timestamptz not null default now()
);
create index connector_sessions_open on connector_sessions (stream_lease_until) where stream_open;
