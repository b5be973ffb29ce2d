-- The audit log: admin actions and sign-ins, appended and never changed. A trigger refuses updates and
-- deletes, so not even a bug in the service can rewrite what it recorded.
create table audit_log (
  id bigserial primary key,
  at timestamptz not null default now(),
  -- 'admin', or 'agent:<email>' for sign-ins
  actor text not null,
  -- e.g. 'POST /v1/admin/tenants/:tenantId/api-keys', 'desk.login.failed'
  action text not null,
  tenant_id text,
  -- the HTTP status the action was answered with
  outcome int,
  -- the ids the action named (route parameters), never secrets or bodies
  details jsonb not null default '{}'::jsonb,
  address text
);
create index audit_log_tenant on audit_log (tenant_id, id);

create function audit_log_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'audit_log is append-only';
end
$$;
create trigger audit_log_no_change before update or delete on audit_log
  for each row execute function audit_log_append_only();
