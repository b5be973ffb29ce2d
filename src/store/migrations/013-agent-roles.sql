-- Roles on the desk: 'agent' answers chats; 'supervisor' also sees the team, reads and moves any desk
-- chat of the tenant, and can set an agent away or end their sessions.
alter table agents add column role text not null default 'agent' check (role in ('agent', 'supervisor'));

-- Idle timeout: a session unused for HANDOVER_SESSION_IDLE_SECONDS ends even before expires_at. Each
-- use (or an open console stream) moves idle_expires_at forward. Sessions that exist already get the
-- default idle time from now.
alter table agent_sessions add column idle_expires_at timestamptz;
update agent_sessions set idle_expires_at = least(expires_at, now() + interval '30 minutes');
alter table agent_sessions alter column idle_expires_at set not null;
