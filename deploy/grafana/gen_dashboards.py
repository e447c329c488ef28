# Generates deploy/grafana/dashboards/*.json (one dashboard per concern).
# Edit here and run: python3 deploy/grafana/gen_dashboards.py; then
# go test ./deploy/grafana/ (structure, PromQL, and every metric on /metrics).
import json, os
OUT=os.path.join(os.path.dirname(os.path.abspath(__file__)),'dashboards')
DS={"type":"prometheus","uid":"${datasource}"}
def templ(extra=()):
    l=[{"name":"datasource","type":"datasource","query":"prometheus","label":"Prometheus","current":{}}]
    l+=list(extra)
    return {"list":l}
def var(name,label,q):
    return {"name":name,"label":label,"type":"query","datasource":DS,"query":{"query":q,"refId":"v"},"definition":q,
            "includeAll":True,"multi":True,"allValue":".*","refresh":2,"current":{}}
pid=[0]
def panel(title, targets, kind="timeseries", unit="short", w=12, h=8, desc="", stack=False):
    pid[0]+=1
    p={"id":pid[0],"type":kind,"title":title,"description":desc,"datasource":DS,
       "fieldConfig":{"defaults":{"unit":unit},"overrides":[]},"options":{},
       "targets":[{"refId":chr(65+i),"datasource":DS,"expr":e,"legendFormat":lg} for i,(e,lg) in enumerate(targets)]}
    if kind=="timeseries" and stack:
        p["fieldConfig"]["defaults"]["custom"]={"stacking":{"mode":"normal"}}
    p["_w"]=w; p["_h"]=h
    return p
def row(title):
    pid[0]+=1
    return {"id":pid[0],"type":"row","title":title,"collapsed":False,"panels":[],"_w":24,"_h":1}
def dash(uid,title,desc,panels,extra_vars=()):
    x=y=0; rowh=0
    for p in panels:
        w,h=p.pop("_w"),p.pop("_h")
        if x+w>24: x=0; y+=rowh; rowh=0
        p["gridPos"]={"x":x,"y":y,"w":w,"h":h}
        x+=w; rowh=max(rowh,h)
        if x>=24: x=0; y+=rowh; rowh=0
    d={"uid":uid,"title":title,"description":desc,"tags":["kakin"],"timezone":"utc","schemaVersion":39,"version":1,
       "editable":True,"refresh":"30s","time":{"from":"now-6h","to":"now"},"templating":templ(extra_vars),
       "annotations":{"list":[]},"links":[{"type":"dashboards","tags":["kakin"],"title":"Kakin","asDropdown":True}],
       "panels":panels}
    with open(os.path.join(OUT,uid+".json"),"w") as f:
        json.dump(d,f,indent=2,ensure_ascii=False); f.write("\n")
    pid[0]=0

R='$__rate_interval'
def rec(stage,outcome): return f'sum(rate(kakin_stage_records_total{{stage="{stage}",outcome=~"{outcome}"}}[{R}]))'
def inc(stage,outcome,rng='1h'): return f'sum(increase(kakin_stage_records_total{{stage="{stage}",outcome=~"{outcome}"}}[{rng}]))'
def q(h,metric,by,sel=''): return f'histogram_quantile({h}, sum by (le, {by}) (rate({metric}_bucket{sel}[{R}])))'

# 1. Pipeline flow and conservation
dash("kakin-pipeline","Kakin / Pipeline flow",
 "Records through every stage and the two conservation laws: what ingest wrote to usage.raw = dedupe's accepted + duplicates + malformed; dedupe's accepted = the rater's rated + unrated. A balance that does not return to 0 (± the lag) means records are stuck or lost.",
 [row("Flow (records/s)"),
  panel("Ingest: received", [(rec("ingest","accepted"),"accepted into usage.raw"),(rec("ingest","rejected"),"rejected (per-record reason)"),(rec("ingest","rate_limited"),"rate limited (429)"),
    (f'sum(rate(kakin_import_records_total{{outcome="accepted"}}[{R}]))',"imported into usage.raw"),(f'sum(rate(kakin_import_records_total{{outcome="rejected"}}[{R}]))',"import rejected")],unit="ops",w=8),
  panel("Dedupe", [(rec("dedupe","accepted"),"accepted"),(rec("dedupe","duplicate"),"duplicate"),(rec("dedupe","malformed"),"malformed (to unrated)")],unit="ops",w=8,stack=True),
  panel("Rater", [(rec("rater","rated"),"rated"),(rec("rater","unrated"),"unrated"),(rec("rater","correction|correction_unpriced"),"corrections"),(rec("rater","fixed_fee|fixed_fee_overflow"),"fixed fees")],unit="ops",w=8,stack=True),
  panel("Aggregator: rows into ClickHouse", [(f'sum by (outcome) (rate(kakin_stage_records_total{{stage="aggregator"}}[{R}]))',"{{outcome}}")],unit="ops",w=12),
  panel("Consumer lag (records)", [('max by (stage) (kakin_stage_consumer_lag_records)',"{{stage}}")],w=12),
  panel("Parked as malformed_record (could not be read)", [(f'sum by (stage) (increase(kakin_stage_parked_total[1h]))',"{{stage}}")],w=24,h=6,
    desc="Records a stage could not decode, kept on usage.unrated with their raw bytes and the reason: never dropped, never charged. Anything here is a producer bug or a foreign writer on a Kakin topic."),
  row("Conservation over the last hour (0 ± lag is healthy)"),
  panel("usage.raw in − (accepted + duplicates + malformed)",
    [(f'({inc("ingest","accepted")} + sum(increase(kakin_import_records_total{{outcome="accepted"}}[1h])) or {inc("ingest","accepted")}) - {inc("dedupe","accepted|duplicate|malformed")}',"raw balance"),
     ('max(kakin_stage_consumer_lag_records{stage="dedupe"})',"dedupe lag now")],w=12,
    desc="Ingested (written to usage.raw by the HTTP intake and imports) = accepted + duplicates + malformed, once dedupe caught up."),
  panel("dedupe accepted − (rated + unrated)",
    [(f'{inc("dedupe","accepted")} - {inc("rater","rated|unrated")}',"accepted balance"),
     ('max(kakin_stage_consumer_lag_records{stage="rater"})',"rater lag now")],w=12,
    desc="Accepted = rated + unrated, once the rater caught up. Corrections travel on usage.accepted too but come from the admin API, not dedupe; they are counted apart."),
  panel("Received per outcome, last 24 h", [(inc("ingest","accepted","24h"),"ingest accepted"),(inc("ingest","rejected","24h"),"ingest rejected"),(inc("dedupe","accepted","24h"),"dedupe accepted"),
     (inc("dedupe","duplicate","24h"),"duplicates"),(inc("rater","rated","24h"),"rated"),(inc("rater","unrated","24h"),"unrated")],kind="stat",w=24,h=5),
 ])

# 2. Lag per group
dash("kakin-lag","Kakin / Consumer lag","Each consumer group's lag from the broker (end − committed over all partitions) and whether its consumers can fetch.",
 [panel("Lag per group", [('max by (stage) (kakin_stage_consumer_lag_records{stage=~"$stage"})',"{{stage}}")],w=24,h=9),
  panel("Lag change over 10 min (positive = falling behind)", [('max by (stage) (delta(kakin_stage_consumer_lag_records{stage=~"$stage"}[10m]))',"{{stage}}")],w=12),
  panel("Handled records/s vs lag drain", [(f'sum by (stage) (rate(kakin_stage_records_total{{stage=~"$stage"}}[{R}]))',"{{stage}} handled")],unit="ops",w=12),
  panel("Kafka reachable per consumer", [('min by (stage, instance) (kakin_stage_kafka_up{stage=~"$stage"})',"{{stage}} {{instance}}")],w=12),
  panel("Blocked on Kafka for", [('(time() - kakin_stage_kafka_blocked_since_seconds{stage=~"$stage"}) and kakin_stage_kafka_blocked_since_seconds{stage=~"$stage"} > 0',"{{stage}} {{instance}}")],unit="s",w=12),
 ], extra_vars=[var("stage","Stage","label_values(kakin_stage_consumer_lag_records, stage)")])

# 3. Latency
dash("kakin-latency","Kakin / Latency","Ingest time to each stage (end to end), batch handling time, batch sizes and HTTP latency.",
 [panel("Ingest → handled, p50/p99", [(q(0.5,"kakin_stage_ingest_to_handled_seconds","stage"),"{{stage}} p50"),(q(0.99,"kakin_stage_ingest_to_handled_seconds","stage"),"{{stage}} p99")],unit="s",w=24,h=9),
  panel("Batch handling time p99", [(q(0.99,"kakin_stage_batch_seconds","stage"),"{{stage}}")],unit="s",w=12),
  panel("Records per batch (mean)", [(f'sum by (stage) (rate(kakin_stage_batch_records_sum[{R}])) / sum by (stage) (rate(kakin_stage_batch_records_count[{R}]))',"{{stage}}")],w=12),
  panel("HTTP p99 per route", [(q(0.99,"kakin_http_request_seconds","route"),"{{route}}")],unit="s",w=24),
 ])

# 4. Dedupe
dash("kakin-dedupe","Kakin / Dedupe","Claims in Redis: round trips, Redis health, the hourly sweep and the tenants' dedupe windows.",
 [panel("Redis up (claims)", [('min(kakin_dedupe_redis_up)',"redis up")],kind="stat",w=6,h=5),
  panel("Blocked on Redis for", [('max((time() - kakin_dedupe_blocked_since_seconds) and kakin_dedupe_blocked_since_seconds > 0) or vector(0)',"blocked")],kind="stat",unit="s",w=6,h=5),
  panel("Claims remembered", [('max(kakin_dedupe_claims_remembered)',"ids")],kind="stat",w=6,h=5),
  panel("Last sweep", [('time() - max(kakin_dedupe_sweep_last_success_timestamp_seconds)',"ago")],kind="stat",unit="s",w=6,h=5),
  panel("Claim round trip p50/p99", [(q(0.5,"kakin_dedupe_claim_seconds","instance"),"{{instance}} p50"),(q(0.99,"kakin_dedupe_claim_seconds","instance"),"{{instance}} p99")],unit="s",w=12),
  panel("Duplicates / records", [(f'{rec("dedupe","duplicate")} / {rec("dedupe","accepted|duplicate|malformed")}',"duplicate share")],unit="percentunit",w=12),
  panel("Dedupe errors", [(f'sum by (kind) (rate(kakin_stage_errors_total{{stage="dedupe"}}[{R}]))',"{{kind}}")],unit="ops",w=12),
  panel("Sweep", [('max(kakin_dedupe_sweep_duration_seconds)',"duration"),(f'sum(rate(kakin_dedupe_claims_swept_total[{R}]))',"swept/s"),(f'sum(increase(kakin_dedupe_sweep_failures_total[1h]))',"failures (1h)")],w=12),
  panel("Tenant windows age", [('max by (instance) (kakin_tenant_windows_age_seconds)',"{{instance}}")],unit="s",w=12),
  panel("Tenant windows stale / refresh failures", [('max by (instance) (kakin_tenant_windows_stale)',"stale {{instance}}"),(f'sum(increase(kakin_tenant_windows_refresh_failures_total[1h]))',"refresh failures (1h)")],w=12),
 ])

# 5. Rater and running state
dash("kakin-rater","Kakin / Rater","Pricing outcomes, running-state load/save errors, re-rates, fixed fees and catalogue compiles.",
 [panel("Outcomes", [(f'sum by (outcome) (rate(kakin_stage_records_total{{stage="rater"}}[{R}]))',"{{outcome}}")],unit="ops",w=12),
  panel("Unrated share", [(f'{rec("rater","unrated|correction_unpriced|fixed_fee_overflow")} / sum(rate(kakin_stage_records_total{{stage="rater"}}[{R}]))',"unrated")],unit="percentunit",w=12),
  panel("Running state and write errors", [(f'sum by (kind) (rate(kakin_stage_errors_total{{stage="rater"}}[{R}]))',"{{kind}}")],unit="ops",w=12,
    desc="state_load / state_save: the running state in Redis; kafka_write: outputs; rerate_*: re-rate periods; fixed_fees: the fixed-fee emitter."),
  panel("Batch time p99", [(q(0.99,"kakin_stage_batch_seconds","stage",'{stage="rater"}'),"rater")],unit="s",w=12),
  panel("Catalogue compiles", [(f'sum by (outcome) (rate(kakin_rater_catalogue_compiles_total[{R}]))',"{{outcome}}")],unit="ops",w=12),
  panel("Catalogue compile time p99", [(q(0.99,"kakin_rater_catalogue_compile_seconds","instance"),"{{instance}}")],unit="s",w=12),
  panel("Catalogue replica: last poll age", [('time() - max by (instance) (kakin_catalog_replica_last_poll_timestamp_seconds)',"{{instance}}")],unit="s",w=12),
  panel("Catalogue replica: changes applied, errors, poll time", [(f'sum by (instance) (rate(kakin_catalog_replica_applied_total[{R}]))',"applied/s {{instance}}"),
     (f'sum by (instance) (increase(kakin_catalog_replica_errors_total[1h]))',"errors (1h) {{instance}}"),(q(0.99,"kakin_catalog_replica_poll_seconds","instance"),"poll p99 s {{instance}}"),
     ('max by (instance) (kakin_catalog_replica_load_seconds)',"initial load s {{instance}}")],w=12),
  panel("Catalogue write lock wait p99", [(q(0.99,"kakin_catalog_lock_wait_seconds","instance"),"{{instance}}")],unit="s",w=12),
  panel("Component failures (process stopped)", [(f'sum by (component) (increase(kakin_component_failures_total[1h]))',"{{component}}")],w=12),
 ])

# 6. ClickHouse inserts
dash("kakin-clickhouse","Kakin / ClickHouse inserts","The aggregator's inserts per table: latency, rows, failures (a failed batch is retried for ever).",
 [panel("Insert latency p50/p99 per table", [(q(0.5,"kakin_clickhouse_insert_seconds","table"),"{{table}} p50"),(q(0.99,"kakin_clickhouse_insert_seconds","table"),"{{table}} p99")],unit="s",w=24,h=9),
  panel("Inserts per second per table", [(f'sum by (table) (rate(kakin_clickhouse_insert_seconds_count[{R}]))',"{{table}}")],unit="ops",w=12),
  panel("Rows per second", [(f'sum by (outcome) (rate(kakin_stage_records_total{{stage="aggregator"}}[{R}]))',"{{outcome}}")],unit="ops",w=12),
  panel("Insert errors", [(f'sum(rate(kakin_stage_errors_total{{stage="aggregator",kind="clickhouse"}}[{R}]))',"clickhouse")],unit="ops",w=12),
  panel("Catalogue writes", [(f'sum by (outcome) (rate(kakin_catalog_writes_total[{R}]))',"{{outcome}}"),(q(0.99,"kakin_catalog_write_seconds","instance"),"p99 s {{instance}}")],w=12),
  panel("Replica delay (cluster only)", [('max by (replica) (kakin_clickhouse_replica_delay_seconds)',"delay {{replica}}"),('max by (replica) (kakin_clickhouse_replica_up) == 0',"not answering {{replica}}")],unit="s",w=24,
     desc="With --clickhouse-cluster: how far each server is behind its replicas (system.replicas absolute_delay, the largest over Kakin's tables); a server no process reaches shows as not answering. Alerts: KakinClickHouseReplicaDelay (> 5 min for 10 min), KakinClickHouseReplicaDown. Empty on a single server."),
 ])

# 7. API and 429s
dash("kakin-api","Kakin / API","Requests per route and status, latency, 5xx, rate limiting (429) and the token endpoint.",
 [panel("Requests per status class", [(f'sum by (code) (rate(kakin_http_request_seconds_count[{R}]))',"{{code}}")],unit="reqps",w=12,stack=True),
  panel("5xx share", [(f'sum(rate(kakin_http_request_seconds_count{{code=~"5.."}}[{R}])) / sum(rate(kakin_http_request_seconds_count[{R}]))',"5xx")],unit="percentunit",w=12),
  panel("Requests per route", [(f'sum by (route) (rate(kakin_http_request_seconds_count[{R}]))',"{{route}}")],unit="reqps",w=12),
  panel("p99 per route", [(q(0.99,"kakin_http_request_seconds","route"),"{{route}}")],unit="s",w=12),
  panel("429s per route", [(f'sum by (route) (rate(kakin_http_request_seconds_count{{code="429"}}[{R}]))',"{{route}}")],unit="reqps",w=12),
  panel("Rate limiter decisions", [(f'sum by (class, outcome) (rate(kakin_ratelimit_decisions_total[{R}]))',"{{class}} {{outcome}}"),
     (q(0.99,"kakin_ratelimit_check_seconds","class"),"check p99 s {{class}}")],w=12),
  panel("Token endpoint", [(f'sum(rate(kakin_auth_tokens_issued_total[{R}]))',"issued"),(f'sum by (error) (rate(kakin_auth_token_errors_total[{R}]))',"refused: {{error}}"),
     (f'sum by (by) (rate(kakin_auth_token_attempts_limited_total[{R}]))',"limited before hash, by {{by}}"),(f'sum(rate(kakin_auth_secret_hashes_total[{R}]))',"argon2id hashes")],unit="ops",w=12),
  panel("Requests refused by authentication", [(f'sum by (code) (rate(kakin_auth_rejected_total[{R}]))',"{{code}}")],unit="reqps",w=12),
  panel("Revocation list", [('max by (instance) (kakin_auth_revocations_age_seconds)',"age {{instance}}"),('max by (instance) (kakin_auth_revocations_stale)',"stale {{instance}}"),('max(kakin_auth_revoked_clients)',"revoked clients"),
     ('sum(increase(kakin_auth_revocation_refresh_failures_total[1h]))',"refresh failures (1h)")],w=12),
  panel("Corrections (invalidate / cancel)", [(f'sum by (action, outcome) (rate(kakin_usage_corrections_total[{R}]))',"{{action}} {{outcome}}")],unit="ops",w=12),
 ])

# 8. Jobs and imports
dash("kakin-jobs","Kakin / Jobs and imports","Asynchronous jobs (usage imports, re-rates): running, finished by status, durations, and the import pipeline.",
 [panel("Running / unfinished", [('sum by (kind) (kakin_jobs_running)',"running {{kind}}"),('max(kakin_jobs_unfinished)',"unfinished (all tenants)")],w=12),
  panel("Finished per status", [(f'sum by (kind, status) (increase(kakin_jobs_finished_total[1h]))',"{{kind}} {{status}}")],w=12),
  panel("Run time p50/p99", [(q(0.5,"kakin_jobs_run_seconds","kind"),"{{kind}} p50"),(q(0.99,"kakin_jobs_run_seconds","kind"),"{{kind}} p99")],unit="s",w=12),
  panel("Uploads", [(f'sum by (outcome) (rate(kakin_import_uploads_total[{R}]))',"{{outcome}}"),(f'sum(rate(kakin_import_upload_bytes_total[{R}]))',"bytes/s")],w=12),
  panel("Import records", [(f'sum by (outcome) (rate(kakin_import_records_total[{R}]))',"{{outcome}}")],unit="ops",w=12),
  panel("Import publishing", [(q(0.99,"kakin_import_publish_seconds","instance"),"publish p99 s {{instance}}"),(f'sum(rate(kakin_import_publish_errors_total[{R}]))',"publish errors/s"),
     (f'sum(rate(kakin_import_throttled_seconds_total[{R}]))',"throttled s/s"),(f'sum(increase(kakin_import_spool_files_swept_total[1h]))',"spool files swept (1h)")],w=12),
 ])
