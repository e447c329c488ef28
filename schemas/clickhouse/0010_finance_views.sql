-- Views for finance (docs/FINANCE.md): what finance asks of the streamed
-- charges, with FINAL built in, so that a redelivered line (two rows of one
-- line_id before a merge) is never counted twice. Without FINAL a customer
-- once showed 272,741 instead of 271,841.
--
-- ClickHouse 18.16 does not push a WHERE on a view into the view's query:
-- every read of these views reads the table with FINAL before filtering.
-- That is right, only slower than a filtered read of the table; the API
-- (/v1/charges, /v1/service-contracts/{id}/charges) reads the tables with
-- their sorting key.
--
-- A fixed-fee line (the rater's FixedFees) has an event_id starting with
-- 'fixed:', the fee code as element and contract/fee as item: kind tells
-- them apart from metered lines. Amounts are sums of Decimal(38, 9), exact.
-- Version 0010 (not 0008/0009): those numbers are taken by work on other
-- branches (receivables, reports); the runner applies every version it has
-- not applied, gaps allowed.

-- Monthly (billing period) total per customer and currency.
CREATE VIEW IF NOT EXISTS finance_customer_totals AS
SELECT tenant, period, customer, currency,
       sum(amount) AS amount,
       count() AS lines
FROM rated_usage FINAL
GROUP BY tenant, period, customer, currency;

-- Monthly total per service contract and currency, split into fixed fees
-- (base, 基本額) and metered charges (additional, 加算額). Price-list lines
-- (tenants without a catalogue) have contract ''.
CREATE VIEW IF NOT EXISTS finance_contract_totals AS
SELECT tenant, period, customer, contract, currency,
       sumIf(line_amount, fixed) AS base_amount,
       sumIf(line_amount, NOT fixed) AS additional_amount,
       sum(line_amount) AS amount,
       count() AS lines
FROM (SELECT tenant, period, customer, contract, currency, amount AS line_amount,
             startsWith(event_id, 'fixed:') AS fixed
      FROM rated_usage FINAL)
GROUP BY tenant, period, customer, contract, currency;

-- Monthly total per contract, element and currency. kind is 'fixed' for a
-- fixed fee (element is then the fee code) and 'metered' otherwise.
CREATE VIEW IF NOT EXISTS finance_element_totals AS
SELECT tenant, period, customer, contract,
       if(startsWith(event_id, 'fixed:'), 'fixed', 'metered') AS kind,
       element, currency,
       sum(quantity) AS quantity,
       sum(amount) AS amount,
       count() AS lines
FROM rated_usage FINAL
GROUP BY tenant, period, customer, contract, kind, element, currency;

-- Records parked as unrated, per month of their usage time (UTC, YYYYMM)
-- and reason. records counts every record ever parked (one per event id);
-- still_unrated those without a rated line now (a later re-rate that priced
-- one keeps its usage_unrated row).
CREATE VIEW IF NOT EXISTS finance_unrated_by_month AS
SELECT tenant, toYYYYMM(event_time, 'UTC') AS month, reason_code,
       count() AS records,
       countIf((tenant, event_id) NOT IN (SELECT tenant, event_id FROM rated_usage)) AS still_unrated
FROM usage_unrated FINAL
GROUP BY tenant, month, reason_code;

-- Duplicate records (a second record with an id already accepted), per
-- month of their usage time (UTC, YYYYMM). payload_differs counts those
-- whose content differed from the first record's.
CREATE VIEW IF NOT EXISTS finance_duplicates_by_month AS
SELECT tenant, toYYYYMM(event_time, 'UTC') AS month,
       count() AS duplicates,
       sum(payload_differs) AS payload_differs,
       uniqExact(event_id) AS distinct_ids
FROM usage_duplicates FINAL
GROUP BY tenant, month;

-- The contract listing fields of service contracts (spec 002): the
-- customer's label, the associated services (連携サービス) and the contracted
-- accounts, as JSON (ClickHouse 18.16 cannot unnest a JSON array).
CREATE VIEW IF NOT EXISTS catalog_service_contract_listing AS
SELECT tenant, id AS service_contract, customer,
       visitParamExtractString(doc, 'service') AS service,
       visitParamExtractString(doc, 'parent') AS parent,
       visitParamExtractString(doc, 'label') AS label,
       visitParamExtractRaw(doc, 'associated_services') AS associated_services_json,
       visitParamExtractRaw(doc, 'accounts') AS accounts_json,
       revision, changed_at
FROM catalog_current FINAL
WHERE kind = 'service_contract' AND deleted = 0;
