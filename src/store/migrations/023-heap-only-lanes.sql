-- A lane's row is updated twice for every message: its accept statement counts the message in and
-- leases the lane, its completion counts it out and gives the lane back. Two partial indexes were
-- keyed on its pending count (the lanes owed a claim, and each helpdesk's backlog), so each of those
-- updates wrote a new entry in every index of the table, and vacuum had to clear the old ones.
-- Without them the table has its primary key only, which neither update changes: PostgreSQL writes
-- them as heap-only updates, in the page the row is in, and prunes the old versions as it goes.
-- The fill factor leaves half of each page for them.
--
-- Claims now find lanes owed one through the index of pending outbox items (src/delivery/claim-lanes.ts),
-- and whether a helpdesk is far behind is read from the backlog sampled for the metrics
-- (docs/performance.md, "Lanes updated in their page").
drop index if exists outbox_lanes_due;
drop index if exists outbox_lanes_connector_pending;
alter table outbox_lanes set (fillfactor = 50);
