-- A tenant's duplicate-detection window in seconds: how long its event ids
-- are remembered, and how old an event ingest still accepts. 0 means the
-- process default (--dedupe-window, 35 days).
--
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; the migration runner
-- treats "column already exists" of an ADD COLUMN as already applied.
ALTER TABLE tenants ADD COLUMN dedupe_window_seconds UInt32 DEFAULT 0 AFTER admin_requests_per_minute;
