// Package grafana holds Kakin's Grafana dashboards (dashboards/, one per
// concern) and the provisioning files the compose stack mounts. Its tests
// check the dashboards' structure and PromQL, and that every metric a
// dashboard or an alert rule (deploy/prometheus) names exists on a running
// Kakin's /metrics.
package grafana
