-- Every message inserts an outbox item and, once delivered, deletes it again. The item had two indexes
-- on the same columns: the unique key (lane, seq) over every item, and the index of pending items
-- (lane, seq) that claims and lane reads walk. Now the index of pending items is the unique one and the
-- key is gone: one index entry fewer for every message. Sequence numbers are taken from the lane's row
-- under its lock, so they never repeat; what the key guarded is still guarded where it matters, among
-- the items still to deliver. Every statement that reads items by lane reads pending ones (the others
-- are read by id), and none names the key, so the release before this one runs on it unchanged.
--
-- The build reads the whole outbox: pending items, and those kept after a failed attempt (done, dead
-- or cancelled). Writes to it wait while the index is built (docs/deploy.md, "Migrations").
drop index if exists outbox_lane_pending;
create unique index outbox_lane_pending on outbox (lane, seq) where state = 'pending';
alter table outbox drop constraint if exists outbox_lane_seq_key;
