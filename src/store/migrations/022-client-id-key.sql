-- A message's client id is unique per conversation and direction. Its index is now on one expression,
-- the array of the three, and every probe of it matches that array: the index of (conversation,
-- sequence) cannot serve such a probe.
--
-- Before, the probe matched the three columns, and the index of (handover_id, seq) served its first
-- one too. On tables as small as a new instance has (a few hundred messages, not analysed yet), the
-- planner's costs of the two were a tie, and the plan a connection made then (kept by the prepared
-- statement until the next analyse) read every message of the conversation at each probe: a cost that
-- grew with every message of the conversation, about two thirds of the accept statement's time at
-- 280 messages a conversation (docs/performance.md, "A probe that read the whole conversation").
-- An index of that name left invalid by a build of it that failed (docs/deploy.md, "Migrations") is
-- dropped first, or it would be kept in place of the valid one.
do $$
begin
  if exists (select 1 from pg_index i join pg_class c on c.oid = i.indexrelid
             where c.relname = 'messages_client_key' and c.relnamespace = current_schema()::regnamespace and not i.indisvalid) then
    drop index messages_client_key;
  end if;
end
$$;
create unique index if not exists messages_client_key on messages ((array[handover_id, direction, client_id])) where client_id is not null;
drop index if exists messages_client_id;
