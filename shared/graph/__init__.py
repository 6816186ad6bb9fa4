"""Microsoft Graph client shared by the syncer and the writer (and the ingress for OAuth)."""
