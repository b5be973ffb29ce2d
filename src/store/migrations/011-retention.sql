-- Per-tenant retention: ended conversations older than this many days are deleted; null keeps them.
alter table tenants add column retention_days integer;
create index handovers_ended_at on handovers (tenant_id, ended_at) where state = 'ended';
