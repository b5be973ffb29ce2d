-- The desk's history of closed chats: a tenant's ended handovers, newest first, read a page at a time.
create index handovers_ended on handovers (tenant_id, ended_at desc, id desc) where state = 'ended';
