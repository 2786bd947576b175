"""tenantmove: the pure engine that finds, copies, archives, checksums and deletes one tenant's rows."""
