-- The upload an imported record came from (ingest/imports): the uploaded
-- file's name as the client gave it (empty when the upload had none) and the
-- id of the import job that published the record. Both are empty for records
-- sent to the API and for records stored before these columns: finance finds
-- every record of one upload with `WHERE import_job = '…'` (or by file name).
--
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; the migration runner
-- treats "column already exists" of an ADD COLUMN as already applied.
ALTER TABLE usage_records ADD COLUMN import_file String DEFAULT '';
ALTER TABLE usage_records ADD COLUMN import_job String DEFAULT '';
