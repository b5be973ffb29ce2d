-- Named leases for work that one instance at a time should do (the no-answer timer): held by renewing
-- before `expires_at`, taken over by another instance once it has passed.
create table leases (
  name text primary key,
  holder text not null,
  expires_at timestamptz not null
);
