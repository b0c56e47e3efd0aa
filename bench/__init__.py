"""Benchmarks that print figures beside a reference run in the same process (never timed tests)."""
