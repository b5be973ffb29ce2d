-- Open desk consoles (live event streams), counted per agent and per instance. An agent is online
-- only while a row of theirs has not expired: an instance moves `expires_at` forward while it holds
-- consoles (so a crashed instance's consoles lapse by themselves), and when an agent's last console on
-- it closes it leaves the row to lapse after the reconnect grace (a reload, a network blip).
create table desk_consoles (
  agent_id text not null references agents (id) on delete cascade,
  instance_id text not null,
  tenant_id text not null,
  consoles integer not null check (consoles >= 0),
  expires_at timestamptz not null,
  primary key (agent_id, instance_id)
);
create index desk_consoles_instance on desk_consoles (instance_id);
