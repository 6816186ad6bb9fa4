"""Connecting and disconnecting Outlook Calendar (OAuth 2.0 authorization code + PKCE)."""
