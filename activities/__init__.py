"""Temporal activities: thin adapters from Temporal to the tenantmove engine."""
