-- Rated charge lines. One row per (tenant, line_id); a redelivered batch writes
-- the same key again and ReplacingMergeTree keeps one row per key. Readers use
-- FINAL, so a duplicate row is never counted even before a merge. A re-rate
-- writes a higher version, which replaces the earlier line.
CREATE TABLE IF NOT EXISTS rated_usage (
    tenant       String,
    period       String,
    customer     String,
    line_id      String,
    event_id     String,
    element      String,
    item         String,
    contract     String,
    quantity     Decimal(38, 9),
    unit_price   Decimal(38, 9),
    amount       Decimal(38, 9),
    currency     String,
    event_time   DateTime,
    received_at  DateTime,
    rated_at     DateTime,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(event_time)
ORDER BY (tenant, customer, period, line_id);

-- Usage records flagged as duplicates of an earlier record with the same
-- (tenant, id). Keyed by the duplicate's own position in usage.raw, so a
-- redelivered duplicate is stored once.
CREATE TABLE IF NOT EXISTS usage_duplicates (
    tenant             String,
    event_id           String,
    customer           String,
    element            String,
    contract           String,
    quantity           Decimal(38, 9),
    event_time         DateTime,
    received_at        DateTime,
    raw_partition      Int32,
    raw_offset         Int64,
    first_partition    Int32,
    first_offset       Int64,
    first_received_at  DateTime,
    payload_differs    UInt8,
    detected_at        DateTime
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, event_id, raw_partition, raw_offset);

-- Usage records that could not be priced, with the reason. One row per
-- (tenant, event id): a redelivery or a second failed attempt replaces it.
CREATE TABLE IF NOT EXISTS usage_unrated (
    tenant       String,
    event_id     String,
    customer     String,
    element      String,
    contract     String,
    quantity     Decimal(38, 9),
    event_time   DateTime,
    received_at  DateTime,
    reason_code  String,
    reason       String,
    stage        String,
    raw          String,
    unrated_at   DateTime,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(received_at)
ORDER BY (tenant, event_id);
