"""The read model collections."""
