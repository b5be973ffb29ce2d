-- Internal notes of the desk: written by agents on a chat for their colleagues, never sent to the user,
-- the bot or a helpdesk connector (they are not messages: no outbox row, no event). A transfer may
-- carry one for the agent who takes the chat next (`kind` 'transfer', with the queue it went to).
create table handover_notes (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  handover_id text not null references handovers (id) on delete cascade,
  agent_id text references agents (id) on delete set null,
  agent_name text not null,
  kind text not null check (kind in ('note', 'transfer')),
  queue_name text,
  text text not null,
  created_at timestamptz not null default now()
);
create index handover_notes_handover on handover_notes (handover_id, created_at);
