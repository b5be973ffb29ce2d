-- Availability checks the undelivered backlog towards a connector on every request for its queues.
create index outbox_lanes_connector_pending on outbox_lanes (connector_id) where pending > 0 and connector_id is not null;
