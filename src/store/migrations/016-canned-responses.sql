-- Canned responses of the desk: ready-made replies an agent inserts with `/` in the reply box. A row
-- with no agent belongs to the whole tenant (supervisors manage those); one with an agent is that
-- agent's own. A shortcut is unique within its owner (the tenant's, or one agent's).
create table canned_responses (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  agent_id text references agents (id) on delete cascade,
  shortcut text not null,
  text text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create unique index canned_responses_tenant_shortcut on canned_responses (tenant_id, shortcut) where agent_id is null;
create unique index canned_responses_agent_shortcut on canned_responses (agent_id, shortcut) where agent_id is not null;
