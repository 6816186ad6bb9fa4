from __future__ import annotations

from pydantic import SecretStr

from shared.security.service_auth import token_matches


def test_any_configured_token_is_accepted_for_rotation() -> None:
    accepted = [SecretStr("old-token"), SecretStr("new-token")]
    assert token_matches("old-token", accepted)
    assert token_matches("new-token", accepted)
    assert not token_matches("other", accepted)
    assert not token_matches("", [SecretStr("")])
