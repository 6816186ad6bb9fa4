"""Security helpers shared by the HTTP services."""
