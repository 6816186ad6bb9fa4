"""Kafka plumbing: broker factory, publishing, consuming with a dead-letter path."""
