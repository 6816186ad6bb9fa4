"""Prometheus metrics shared by every service (each service adds its own beside these)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_HANDLED = Counter(
    "smvue_records_handled_total", "Kafka records handled successfully", ["service", "topic"]
)
DEAD_LETTERS = Counter(
    "smvue_dead_letters_total",
    "Records sent to a dead-letter topic",
    ["service", "topic", "reason"],
)
HANDLER_SECONDS = Histogram(
    "smvue_handler_seconds", "Time spent handling one Kafka record", ["service", "topic"]
)
HTTP_REQUESTS = Counter(
    "smvue_http_requests_total", "HTTP requests answered", ["service", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "smvue_http_request_seconds",
    "HTTP answer time",
    ["service", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
GRAPH_REQUESTS = Counter(
    "smvue_graph_requests_total",
    "Microsoft Graph requests made",
    ["service", "operation", "status"],
)
CONSUMER_LAG = Gauge(
    "smvue_consumer_lag",
    "Records on the partition not yet committed by the consumer group",
    ["group", "topic", "partition"],
)
CONSUMER_IN_FLIGHT = Gauge(
    "smvue_consumer_in_flight",
    "Records fetched and not yet finished (applied or dead-lettered)",
    ["group", "topic"],
)
