// Package ingest is the front door of the data path: it accepts usage records
// over HTTP (one JSON object, a JSON array, or NDJSON), validates each one,
// writes the valid ones to the usage.raw topic and answers only after Kafka
// acknowledged them (acks=all), with a per-record status.
package ingest
