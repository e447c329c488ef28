-- A tenant's data limits (000 §3(4)), set with `kakin tenants set-limits`;
-- 0 means the default. Newest version wins (read with FINAL).
--   tenant            tenant id
--   max_customers     live customers (default 100,000)
--   max_contracts     live service + discount contracts together (default 100,000)
--   max_detail_lines  current receivable detail lines (default 1,000,000)
--   changed_by        who set them
--   version           newest wins
CREATE TABLE IF NOT EXISTS tenant_data_limits (
    tenant            String,
    max_customers     UInt32,
    max_contracts     UInt32,
    max_detail_lines  UInt32,
    changed_by        String,
    version           UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY tenant;
