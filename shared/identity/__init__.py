"""The Microsoft identity platform through MSAL: the confidential client and its tokens."""
