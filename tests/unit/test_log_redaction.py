"""Secrets never reach the logs, whoever logs them and however."""

from __future__ import annotations

import json
import logging

import pytest

from shared.observability.logging import REDACTED, configure_logging, get_logger, redact_mapping


def test_secret_named_keys_are_replaced() -> None:
    out = redact_mapping(
        {
            "access_token": "abc",
            "refresh_token": "def",
            "client_state": "s3cret",
            "clientState": "s3cret",
            "Authorization": "Bearer xyz",
            "code_verifier": "v",
            "code": "c",
            "body": "<p>private notes</p>",
            "subject": "1:1 with Ana",
        }
    )
    assert out["subject"] == "1:1 with Ana"
    assert all(v == REDACTED for k, v in out.items() if k != "subject")


def test_secrets_inside_values_are_masked() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXZhbHVl"
    out = redact_mapping(
        {
            "error": f"request failed with Bearer {jwt}",
            "url": "https://x/cb?code=SECRETCODE&state=abc",
            "nested": {"list": [f"token {jwt}"]},
        }
    )
    text = json.dumps(out)
    assert jwt not in text
    assert "SECRETCODE" not in text
    assert "state=abc" in text


def test_configured_logger_redacts_end_to_end(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json", service="test")
    get_logger("t").info("calling graph", authorization="Bearer abc.def.ghi", mailbox="m1")
    logging.getLogger("stdlib").warning("refresh_token=leaky&x=1 failed")
    err = capsys.readouterr().err
    assert "abc.def.ghi" not in err
    assert "leaky" not in err
    assert '"mailbox": "m1"' in err
