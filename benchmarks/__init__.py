"""Benchmarks: runnable modules that print figures (see docs/benchmarks.md)."""
