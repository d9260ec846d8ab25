"""Config-space builders, one module per device family; each registers itself."""
