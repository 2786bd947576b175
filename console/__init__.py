"""Operator console: what starter.py commands do, and the end-to-end demo."""
