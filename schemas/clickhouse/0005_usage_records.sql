-- Every record that reached usage.accepted (the first record of each id), as
-- accepted. One row per (tenant, event id): a redelivered record writes the
-- same row again and ReplacingMergeTree keeps one; readers use FINAL.
-- accepted_partition/accepted_offset are the record's position in
-- usage.accepted: all of one customer's records share a partition, so a
-- re-rate replays a customer-period in offset order. event_nanos and
-- received_nanos keep the sub-second part the DateTime columns drop, so the
-- original event can be rebuilt exactly. Attributes are two parallel arrays
-- sorted by key (ClickHouse 18.16 has no Map).
CREATE TABLE IF NOT EXISTS usage_records (
    tenant              String,
    event_id            String,
    customer            String,
    contract            String,
    element             String,
    quantity            Decimal(38, 9),
    event_time          DateTime,
    event_nanos         UInt32,
    received_at         DateTime,
    received_nanos      UInt32,
    attribute_keys      Array(String),
    attribute_values    Array(String),
    accepted_partition  Int32,
    accepted_offset     Int64,
    stored_at           DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, event_id);

-- Status changes of usage records (invalidate / cancel), one row per
-- (tenant, event id, generation). A record without rows is valid at
-- generation 0; every change adds the next generation, so an odd latest
-- generation means invalid and an even one valid. A redelivered change writes
-- the same key again. The full history stays: who, when and why.
CREATE TABLE IF NOT EXISTS usage_status (
    tenant        String,
    event_id      String,
    customer      String,
    element       String,
    generation    UInt64,
    action        String,
    status        String,
    reason        String,
    actor         String,
    requested_at  DateTime,
    applied_at    DateTime,
    priced        UInt8
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, event_id, generation);

-- Billing periods a tenant has closed: usage of a closed period can no longer
-- be invalidated or cancelled. Every change is a new version; the newest per
-- (tenant, period) wins (closed = 0 reopens).
CREATE TABLE IF NOT EXISTS closed_periods (
    tenant      String,
    period      String,
    closed      UInt8,
    changed_at  DateTime,
    changed_by  String,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, period);
