"""Neon API v2: typed models, an httpx client with Neon's retry rules, and a local Neon server for tests."""
