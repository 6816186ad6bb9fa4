"""Pure rules of the read model."""
