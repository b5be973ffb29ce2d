-- Two foreign keys checked or cascaded on every message of the hot path, and enforced elsewhere:
--
-- - messages → handovers: each message inserted ran a check of its handover's row (a query and a row
--   lock per message). Every message takes its sequence number from its handover's row (`last_seq`),
--   under that row's lock and only while the handover is live, so none can be written for a handover
--   that does not exist or is being deleted; handovers are deleted only by deleteHandovers
--   (src/privacy/user-data.ts), which deletes their messages in the same transaction.
-- - delivery_attempts → outbox: each outbox item deleted on delivery ran the cascade's probe of
--   delivery_attempts, although an item delivered at its first attempt has no attempt rows. Only
--   deleteHandovers deletes items that may have attempts, and it deletes their attempts itself; a
--   failed attempt is recorded only while its item is pending (recordFailedAttempt in the worker).
--
-- Together about a fifth of the database's CPU for accepting and completing a message, measured alone
-- (docs/performance.md, "Foreign keys on the hot path").
alter table messages drop constraint if exists messages_handover_id_fkey;
alter table delivery_attempts drop constraint if exists delivery_attempts_outbox_id_fkey;
