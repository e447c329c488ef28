// Package devstack starts the local infrastructure Kakin runs against in
// development and tests: Redis, ClickHouse and an embedded Kafka-protocol
// broker, each bound to loopback with its data under one directory.
//
// Redis and ClickHouse run as child processes in their own process groups;
// on Linux they are also sent SIGKILL when the parent process dies, so a
// crashed test binary does not leave servers behind. Kafka is an in-process
// kfake broker. A server left running by an earlier run on the same data
// directory is detected through its pid file and killed before starting.
package devstack
