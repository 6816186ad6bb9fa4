"""The syncer: Graph delta sync, subscriptions, 1:1 detection → meeting events."""
