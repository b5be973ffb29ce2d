-- When each admin token was last used, by its fingerprint (never the token): to see that an old token
-- is no longer used before it is removed from HANDOVER_ADMIN_TOKEN.
create table admin_token_uses (
  fingerprint text primary key,
  last_used_at timestamptz not null
);
