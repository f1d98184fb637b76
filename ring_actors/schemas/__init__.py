"""msgspec schemas: the single source of truth for manifests and API bodies."""
