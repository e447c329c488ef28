-- Daily usage as a state over time, for usage reports (spec 003): per civil
-- day in time_zone and per subscriber (the record's `user` attribute) of a
-- customer's contract and element, the day fractions the level was held
-- (a whole day at level 1 = 1, half a day = 0.5). Filled by the report job
-- from usage_records FINAL (valid records only) for the days of its period;
-- a recomputation writes the same keys with a higher version (and zero rows
-- for keys it no longer produces), so readers use FINAL and sum quantity.
-- quantity is the exact Σ level × seconds of the row divided by
-- day_seconds (23 or 25 hours on a DST change), rounded once at 10^-9.
CREATE TABLE IF NOT EXISTS usage_daily (
    tenant         String,
    time_zone      String,
    day            Date,
    customer       String,
    contract       String,
    element        String,
    user           String,
    subscriber     String,
    workspace      String,
    location       String,
    quantity       Decimal(38, 9),
    day_seconds    UInt32,
    computed_at    DateTime,
    version        UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(day)
ORDER BY (tenant, time_zone, day, customer, contract, element, user, subscriber, workspace, location);

-- Usage reports that were deleted (DELETE /v1/reports/{id}): the report's
-- job row stays; this row hides it, and its download URL stops working at
-- once in every process (each download reads this table).
CREATE TABLE IF NOT EXISTS report_deletions (
    tenant      String,
    report_id   String,
    deleted_at  DateTime,
    deleted_by  String
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, report_id);
