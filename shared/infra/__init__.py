"""The real local infrastructure: a one-node Kafka (KRaft) and a MongoDB-protocol server
(SecantusDB), started detached on loopback, plus how tests pick their infrastructure."""
