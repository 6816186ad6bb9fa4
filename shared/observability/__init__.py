"""Logs, metrics and health: what operators see of every service."""
