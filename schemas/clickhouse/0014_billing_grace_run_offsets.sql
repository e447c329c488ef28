-- A tenant's billing grace in seconds: how long after a basic contract's
-- billing period ended its automatic billing run starts (run.Auto). 0 means
-- the default (1 day).
--
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; the migration runner
-- treats "column already exists" of an ADD COLUMN as already applied.
ALTER TABLE tenants ADD COLUMN billing_grace_seconds UInt32 DEFAULT 0 AFTER dedupe_window_seconds;

-- The end offsets of the pipeline's topics a billing run waited for every
-- stage's consumer group to commit before it computed (its ingest
-- watermark in Kafka terms): JSON, [{"group","topic","partition","offset"}];
-- empty when the run did not wait.
ALTER TABLE billing_runs ADD COLUMN stage_offsets String DEFAULT '' AFTER watermark;
