-- Post-chat satisfaction ratings (CSAT): the score (1–5) and optional comment a user gave for an ended
-- handover, recorded by the bot once per handover. Removed with the handover (a user's erasure).
create table handover_ratings (
  handover_id text primary key references handovers (id) on delete cascade,
  tenant_id text not null references tenants (id) on delete cascade,
  score smallint not null check (score between 1 and 5),
  comment text,
  created_at timestamptz not null default now()
);
