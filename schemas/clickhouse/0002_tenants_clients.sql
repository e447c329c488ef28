-- Tenants. Append-only: every change writes a new row with a higher version
-- and ReplacingMergeTree keeps the newest per tenant; readers use FINAL. Limit
-- columns are 0 for "use the process default". Every version is also written
-- to audit_log, which keeps the full history after merges.
CREATE TABLE IF NOT EXISTS tenants (
    tenant                      String,
    name                        String,
    ingest_events_per_second    UInt32,
    ingest_requests_per_second  UInt32,
    admin_requests_per_minute   UInt32,
    created_at                  DateTime,
    updated_at                  DateTime,
    updated_by                  String,
    deleted                     UInt8,
    version                     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY tenant;

-- API clients of a tenant (OAuth 2.0 client-credentials). client_id is
-- globally unique. secret_hash is an argon2id hash; the secret itself is never
-- stored. Revocation is a new version with revoked = 1 and is never undone.
CREATE TABLE IF NOT EXISTS api_clients (
    tenant                      String,
    client_id                   String,
    name                        String,
    secret_hash                 String,
    scopes                      Array(String),
    ingest_events_per_second    UInt32,
    ingest_requests_per_second  UInt32,
    admin_requests_per_minute   UInt32,
    revoked                     UInt8,
    revoked_at                  DateTime,
    created_at                  DateTime,
    updated_at                  DateTime,
    updated_by                  String,
    version                     UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, client_id);

-- Every version of every tenant and API client, never replaced: who changed
-- what, when. change is a JSON object (the operation and the new state,
-- without secret hashes).
CREATE TABLE IF NOT EXISTS audit_log (
    tenant     String,
    entity     String,
    entity_id  String,
    version    UInt64,
    at         DateTime,
    actor      String,
    change     String
) ENGINE = MergeTree()
ORDER BY (tenant, entity, entity_id, version);
