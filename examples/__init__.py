"""Runnable examples for platform teams (docs/consumers.md)."""
