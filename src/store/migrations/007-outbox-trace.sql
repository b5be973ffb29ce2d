-- The W3C `traceparent` of the request that queued each outbox item, so its delivery joins that trace.
-- Null when tracing is off or the item was queued by background work.
alter table outbox add column trace_parent text;
