"""Graph change and lifecycle notifications: validated, checked, queued on Kafka, 202."""
