"""Connections: who connected which Microsoft account, and its state (a shared record)."""
