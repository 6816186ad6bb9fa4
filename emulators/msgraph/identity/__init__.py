"""The emulated Microsoft identity platform (v2.0 endpoints): keys, tokens, sign-in, consent."""

from emulators.msgraph.identity.service import DEFAULT_CLIENT_ID, GRAPH_APP_ID, IdentityService

__all__ = ["DEFAULT_CLIENT_ID", "GRAPH_APP_ID", "IdentityService"]
