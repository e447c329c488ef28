-- The catalogue, customers, groups and contracts (catalog/catalogstore).
--
-- catalog_entities is the system of record: append-only, one row per revision
-- of every entity of every kind. Nothing is updated in place; a delete is a
-- tombstone revision (deleted = 1). The sorting key ends with the revision, so
-- every revision is kept, and a retried insert of the same revision (same
-- key, same content) collapses into one row. seq is the tenant's commit
-- sequence (gap-free, assigned under the tenant's write lock): processes
-- follow changes by asking for rows with seq above the last one they applied
-- (through catalog_log and catalog_heads below).
--
-- doc is the entity as JSON without personal fields. For customers, pii is
-- the AES-256-GCM ciphertext of the personal fields (name, address, phone,
-- e-mail) under the tenant's data key (tenant_keys), and bi_* are keyed blind
-- indexes (HMAC-SHA256, truncated to 16 bytes, hex) of the normalised values
-- for exact-match search. customer, start_date and end_date are copies of the
-- contract fields for joins.
CREATE TABLE IF NOT EXISTS catalog_entities (
    tenant       String,
    kind         String,
    id           String,
    revision     UInt64,
    seq          UInt64,
    created_seq  UInt64,
    created_at   DateTime,
    deleted      UInt8,
    changed_at   DateTime,
    changed_by   String,
    doc          String,
    pii          String,
    bi_name      String,
    bi_email     String,
    bi_phone     String,
    bi_address   String,
    customer     String,
    start_date   Nullable(Date),
    end_date     Nullable(Date)
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (tenant, kind, id, revision);

-- The newest revision of every entity (tombstones included), maintained by
-- the materialized view below on every insert into catalog_entities. Read it
-- with FINAL; filter deleted = 0 for the live entities.
CREATE TABLE IF NOT EXISTS catalog_current (
    tenant       String,
    kind         String,
    id           String,
    revision     UInt64,
    seq          UInt64,
    created_seq  UInt64,
    created_at   DateTime,
    deleted      UInt8,
    changed_at   DateTime,
    changed_by   String,
    doc          String,
    pii          String,
    bi_name      String,
    bi_email     String,
    bi_phone     String,
    bi_address   String,
    customer     String,
    start_date   Nullable(Date),
    end_date     Nullable(Date)
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (tenant, kind, id);

CREATE MATERIALIZED VIEW IF NOT EXISTS catalog_current_mv TO catalog_current AS
SELECT tenant, kind, id, revision, seq, created_seq, created_at, deleted, changed_at, changed_by, doc, pii,
       bi_name, bi_email, bi_phone, bi_address, customer, start_date, end_date
FROM catalog_entities;

-- The change feed. catalog_log lists every revision by (tenant, seq): a
-- process that applied a tenant's changes up to seq N reads the rows after N
-- through it with a primary-key range instead of scanning the tenant.
-- catalog_heads holds each tenant's highest seq (a few rows): polling it
-- tells which tenants changed. Both are filled by materialized views in the
-- same insert as catalog_entities.
CREATE TABLE IF NOT EXISTS catalog_log (
    tenant    String,
    seq       UInt64,
    kind      String,
    id        String,
    revision  UInt64
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, seq);

CREATE MATERIALIZED VIEW IF NOT EXISTS catalog_log_mv TO catalog_log AS
SELECT tenant, seq, kind, id, revision FROM catalog_entities;

CREATE TABLE IF NOT EXISTS catalog_heads (
    tenant  String,
    seq     UInt64
) ENGINE = ReplacingMergeTree(seq)
ORDER BY tenant;

CREATE MATERIALIZED VIEW IF NOT EXISTS catalog_heads_mv TO catalog_heads AS
SELECT tenant, max(seq) AS seq FROM catalog_entities GROUP BY tenant;

-- Per-tenant data keys for personal fields: 32 random bytes, wrapped with
-- AES-256-GCM by a master key (--master-key-file, named by master_kid).
-- Plain MergeTree: a key row is never merged away. A rewrap under a new master
-- key adds a row with the same key_id.
CREATE TABLE IF NOT EXISTS tenant_keys (
    tenant      String,
    key_id      String,
    wrapped     String,
    master_kid  String,
    created_at  DateTime,
    created_by  String
) ENGINE = MergeTree()
ORDER BY (tenant, key_id);

-- Views for finance: the current, non-deleted entities with their
-- non-personal fields as columns, to join with rated_usage by tenant and
-- customer. Personal fields are not exposed (they are only ciphertext).
CREATE VIEW IF NOT EXISTS catalog_customers AS
SELECT tenant, id AS customer, visitParamExtractString(doc, 'status') AS status,
       revision, created_at, changed_at, changed_by
FROM catalog_current FINAL
WHERE kind = 'customer' AND deleted = 0;

CREATE VIEW IF NOT EXISTS catalog_groups AS
SELECT tenant, id AS group_id, visitParamExtractString(doc, 'name') AS name,
       visitParamExtractRaw(doc, 'members') AS members_json, revision, changed_at
FROM catalog_current FINAL
WHERE kind = 'group' AND deleted = 0;

CREATE VIEW IF NOT EXISTS catalog_basic_contracts AS
SELECT tenant, id AS basic_contract, customer, start_date, end_date,
       visitParamExtractString(doc, 'currency') AS currency,
       visitParamExtractInt(doc, 'closing_day') AS closing_day,
       visitParamExtractString(doc, 'time_zone') AS time_zone,
       visitParamExtractString(doc, 'rounding') AS rounding,
       revision, changed_at
FROM catalog_current FINAL
WHERE kind = 'basic_contract' AND deleted = 0;

CREATE VIEW IF NOT EXISTS catalog_service_contracts AS
SELECT tenant, id AS service_contract, customer, start_date, end_date,
       visitParamExtractString(doc, 'basic_contract') AS basic_contract,
       visitParamExtractString(doc, 'service') AS service,
       visitParamExtractString(doc, 'parent') AS parent,
       visitParamExtractBool(doc, 'cancelled') AS cancelled,
       visitParamExtractRaw(doc, 'plans') AS plans_json,
       revision, changed_at
FROM catalog_current FINAL
WHERE kind = 'service_contract' AND deleted = 0;

CREATE VIEW IF NOT EXISTS catalog_discount_contracts AS
SELECT tenant, id AS discount_contract, customer, start_date, end_date,
       visitParamExtractString(doc, 'service') AS service,
       visitParamExtractString(doc, 'discount_table') AS discount_table,
       visitParamExtractBool(doc, 'cancelled') AS cancelled,
       visitParamExtractRaw(doc, 'scope') AS scope_json,
       revision, changed_at
FROM catalog_current FINAL
WHERE kind = 'discount_contract' AND deleted = 0;

-- The masters (service, plan, fee, element, rate_table, discount_table): code,
-- name and the effective-dated versions as JSON.
CREATE VIEW IF NOT EXISTS catalog_masters AS
SELECT tenant, kind, id AS code, visitParamExtractString(doc, 'name') AS name,
       visitParamExtractRaw(doc, 'versions') AS versions_json, revision, changed_at, changed_by
FROM catalog_current FINAL
WHERE kind IN ('service', 'plan', 'fee', 'element', 'rate_table', 'discount_table') AND deleted = 0;
