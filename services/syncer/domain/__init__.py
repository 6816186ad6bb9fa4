"""Pure rules of syncing: no I/O."""
