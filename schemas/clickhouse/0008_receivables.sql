-- Receivables (債権) and their detail lines (債権明細), written by the billing
-- run (package billing/run through billingdb). See docs/ARCHITECTURE.md,
-- "Receivables".
--
-- receivables: one row per (tenant, period, receivable_id) and revision.
-- receivable_id is derived from (tenant, basic contract, period), so every
-- run of a period writes the same key. revision grows only when the
-- content changes (content_hash differs) or the status changes: a re-run of
-- unchanged inputs writes byte-identical rows, which collapse. Read with
-- FINAL (or the view receivables_current).
--   tenant            tenant id
--   period            billing period the receivable bills, YYYY-MM
--   receivable_id     rcv_ + xxh3-128 of (tenant, basic contract, period)
--   customer          customer id
--   basic_contract    basic contract id (one receivable per basic contract and period)
--   currency          ISO 4217 code of the basic contract
--   period_start      first day of the period (civil date in time_zone)
--   period_end        last day of the period (civil date in time_zone)
--   time_zone         the basic contract's IANA time zone
--   rounding          the basic contract's rounding mode (half_up, down, up)
--   status            draft, final, voided or discarded
--   number_seq        the tenant's gapless sequence number, 0 until finalised
--   number            the formatted number (tenant's format), empty until finalised
--   subtotal          fixed and metered charges before discounts
--   discounts         discounts (zero or negative)
--   adjustments       signed adjustments for closed periods
--   tax_exclusive     consumption tax added (one tax line per exclusive rate)
--   tax_included      consumption tax contained in tax-inclusive prices
--   total             subtotal + discounts + adjustments + tax_exclusive = sum of the lines
--   lines             number of detail lines
--   taxes_json        the waterfall per tax group: category, rate, inclusive, subtotal, discounts, adjustments, base, tax
--   content_hash      xxh3-128 of everything the receivable says (not its id, status or number)
--   issued_at         when it was finalised (1970-01-01 while a draft)
--   void_reason       why it was voided or discarded
--   changed_by        who made the latest change (client id, run id, or cli)
--   revision          ReplacingMergeTree version: the newest revision wins
CREATE TABLE IF NOT EXISTS receivables (
    tenant          String,
    period          String,
    receivable_id   String,
    customer        String,
    basic_contract  String,
    currency        String,
    period_start    Date,
    period_end      Date,
    time_zone       String,
    rounding        String,
    status          String,
    number_seq      UInt64,
    number          String,
    subtotal        Decimal(38, 9),
    discounts       Decimal(38, 9),
    adjustments     Decimal(38, 9),
    tax_exclusive   Decimal(38, 9),
    tax_included    Decimal(38, 9),
    total           Decimal(38, 9),
    lines           UInt32,
    taxes_json      String,
    content_hash    String,
    issued_at       DateTime,
    void_reason     String,
    changed_by      String,
    revision        UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (tenant, period, receivable_id);

-- receivable_lines: one row per (tenant, period, receivable_id, line_id) and
-- revision (the receivable's revision that wrote it). A line the newest
-- revision no longer has is written again with deleted = 1.
--   tenant, period, receivable_id   the receivable (period = billing period)
--   line_id         xxh3-128 of the receivable id and what tells the line apart
--   seq             the line's place in the receivable (1, 2, ...)
--   kind            fixed, metered, discount, adjustment or tax
--   contract        service contract id (empty for tax lines)
--   plan            price plan code
--   fee             fee code
--   item            fee and split values, e.g. transfer[jp]
--   rate_table      rate table code of a metered charge
--   quantity        the contract quantity (fixed) or the period quantity (metered)
--   unit_price      price per unit, when unit_priced = 1
--   unit_priced     1 when the line has a single unit price (per_unit rates)
--   amount          signed amount (a tax-inclusive line contains its tax)
--   tax_category    standard, reduced, exempt or out_of_scope
--   tax_rate        the rate applied (0.1 for 10 %)
--   tax_inclusive   1 when the amount includes the tax
--   tax             the line's share of its tax group's tax
--   charge_period   the period the charge belongs to (an adjustment: the closed period)
--   charge_from     first day the charge covers
--   charge_to       last day the charge covers
--   note            why (adjustments)
--   deleted         1 when the receivable's newest revision no longer has the line
--   revision        the receivable revision that wrote the row
CREATE TABLE IF NOT EXISTS receivable_lines (
    tenant          String,
    period          String,
    receivable_id   String,
    line_id         String,
    seq             UInt32,
    kind            String,
    contract        String,
    plan            String,
    fee             String,
    item            String,
    rate_table      String,
    quantity        Decimal(38, 9),
    unit_price      Decimal(38, 9),
    unit_priced     UInt8,
    amount          Decimal(38, 9),
    tax_category    String,
    tax_rate        Decimal(38, 9),
    tax_inclusive   UInt8,
    tax             Decimal(38, 9),
    charge_period   String,
    charge_from     Date,
    charge_to       Date,
    note            String,
    deleted         UInt8,
    revision        UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (tenant, period, receivable_id, line_id);

-- billing_runs: the runs of the rating batch, one row per (tenant, run_id)
-- and version (the newest wins).
--   run_id          brun_ + hash of the job id
--   job_id          the job on the jobs API that runs it
--   period          the billing period, YYYY-MM
--   customer        only this customer, or empty for all
--   status          running, completed or failed
--   period_end      pinned event-time end: records after it are not the period's
--   watermark       pinned ingest watermark: only records received before it count
--   receivables     receivables written (draft) by the run
--   unchanged       receivables whose content was already stored
--   lines           detail lines of the receivables
--   differences     reconciliation keys that did not match the streamed charges
--   error           why the run failed
--   started_at, finished_at
--   version         newest wins
CREATE TABLE IF NOT EXISTS billing_runs (
    tenant          String,
    run_id          String,
    job_id          String,
    period          String,
    customer        String,
    status          String,
    period_end      DateTime,
    watermark       DateTime,
    receivables     UInt64,
    unchanged       UInt64,
    lines           UInt64,
    differences     UInt64,
    error           String,
    started_at      DateTime,
    finished_at     DateTime,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, run_id);

-- billing_reconciliation: per run and charge key, the batch recomputation
-- against the streamed charges (rated_usage). A resumed run rewrites the
-- same keys.
--   run_id          the run
--   customer        customer id
--   charge_period   the charge's period
--   item            the stream's item: contract/fee[split]
--   outcome         match, differ, only_in_stream or only_in_batch
--   batch_amount    the batch's amount (0 when only in stream)
--   stream_amount   the sum of the streamed lines (0 when only in batch)
CREATE TABLE IF NOT EXISTS billing_reconciliation (
    tenant          String,
    run_id          String,
    customer        String,
    charge_period   String,
    item            String,
    outcome         String,
    batch_amount    Decimal(38, 9),
    stream_amount   Decimal(38, 9)
) ENGINE = ReplacingMergeTree()
ORDER BY (tenant, run_id, customer, charge_period, item);

-- billing_period_events: every close and reopen of a tenant's period, kept
-- for audit (plain MergeTree: never merged away).
--   action          close or reopen
--   reason          why (required for a reopen)
--   actor           who
--   at              when
--   first_seq, last_seq   the numbers the close assigned (0 when none)
CREATE TABLE IF NOT EXISTS billing_period_events (
    tenant          String,
    period          String,
    action          String,
    reason          String,
    actor           String,
    at              DateTime,
    first_seq       UInt64,
    last_seq        UInt64
) ENGINE = MergeTree()
ORDER BY (tenant, period, at);

-- billing_settings: a tenant's invoice number format ({seq:N}, {yyyy},
-- {mm}), newest version wins.
CREATE TABLE IF NOT EXISTS billing_settings (
    tenant          String,
    number_format   String,
    changed_by      String,
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY tenant;

-- For finance: the current receivables and their current lines.
CREATE VIEW IF NOT EXISTS receivables_current AS
SELECT * FROM receivables FINAL;

CREATE VIEW IF NOT EXISTS receivable_lines_current AS
SELECT * FROM receivable_lines FINAL WHERE deleted = 0;
