"""Autotuning: search schedules per workload, store the best in a tuning database, apply them at build time."""
