-- Asynchronous jobs (package internal/jobs): usage imports now, re-rating
-- later. Append-only: every change of a job writes a new row; the newest
-- version per (tenant, job_id) is the job's state, read with FINAL. version is
-- (epoch << 32) | sequence: epoch grows by one each time a worker takes the
-- job's lease, so rows written by a worker that lost its lease (a lower
-- epoch) never replace those of the worker that took over.
CREATE TABLE IF NOT EXISTS jobs (
    tenant        String,
    job_id        String,
    kind          String,
    status        String,
    params        String,
    checkpoint    String,
    total         UInt64,
    processed     UInt64,
    accepted      UInt64,
    rejected      UInt64,
    error         String,
    created_by    String,
    created_at    DateTime,
    updated_at    DateTime,
    finished_at   DateTime,
    worker        String,
    attempts      UInt32,
    epoch         UInt32,
    version       UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, job_id);

-- The per-line error report of a job: one row per problem of a line (a line
-- can have several, numbered by seq). A worker that resumes after a crash
-- may write a line's rows again; they replace themselves (same key).
CREATE TABLE IF NOT EXISTS job_errors (
    tenant     String,
    job_id     String,
    line       UInt64,
    seq        UInt16,
    record_id  String,
    field      String,
    reason     String
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, job_id, line, seq);

-- Cancellation requests. Kept apart from jobs so that a request can never be
-- overwritten by the running worker's next progress row; the worker reads it
-- between batches.
CREATE TABLE IF NOT EXISTS job_cancels (
    tenant        String,
    job_id        String,
    requested_at  DateTime,
    requested_by  String
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, job_id);
