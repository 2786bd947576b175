"""The HTTP face of the migration workflow: request and approval API, live progress, the superadmin page."""
