"""Temporal workflows: deterministic orchestration of a tenant move."""
