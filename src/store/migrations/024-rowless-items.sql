-- A user's message handed to this instance's delivery worker in the statement that accepts it no
-- longer writes an outbox item: the item would be inserted, indexed three times and deleted again
-- within milliseconds, the largest part of the database's work for a message. Its lane's row says it
-- is owed (a lane's pending items are its tail: the sequence numbers after last_seq - pending), and its
-- content is its row in `messages`, found by the lane's sequence number kept here (no index: a lane is
-- its conversation, read through the (handover_id, seq) key).
--
-- So that claims still find such a lane (after its instance died, or gave it back with items left), the
-- lane has one marker item while it may hold rowless items: sequence number 0, kind 'lane.rowless', in a
-- state of its own, 'marker', which the previous release's statements (all of them `state = 'pending'`)
-- never read: its pods, still running during a rollout, neither deliver a marker nor claim a lane that
-- has only one. The index of owed items takes markers in; a statement for pending items alone still
-- uses it. Markers of lanes idle for a while are swept; the second index finds them
-- (src/delivery/rowless.ts).
alter table messages add column if not exists lane_seq bigint;
drop index if exists outbox_lane_pending;
create index outbox_lane_pending on outbox (lane, seq) where state in ('pending', 'marker');
create index if not exists outbox_markers on outbox (created_at) where state = 'marker';
