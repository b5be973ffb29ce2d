-- Files attached to a chat's messages (docs/desk.md, "Attachments"): uploaded by an agent at the desk or
-- by the bot for its user, kept by the service in its attachment store (a directory, or an S3 bucket)
-- under `storage_key`, and served only through short-lived signed links. `content_type` is the type the
-- bytes themselves showed (their magic numbers), never only the one the uploader declared.
create table attachments (
  id text primary key,
  tenant_id text not null references tenants (id) on delete cascade,
  handover_id text not null references handovers (id) on delete cascade,
  uploaded_by jsonb not null,
  name text not null,
  content_type text not null,
  size integer not null check (size > 0),
  storage_key text not null,
  created_at timestamptz not null default now()
);
create index attachments_handover on attachments (handover_id);
