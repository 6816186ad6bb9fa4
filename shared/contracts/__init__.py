"""Published contracts: every record the system carries on Kafka, in one envelope."""
