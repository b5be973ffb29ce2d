-- A user's handovers, found without scanning the tenant's (export and erasure of one end user's data).
create index handovers_user on handovers (tenant_id, (user_info->>'id'));
