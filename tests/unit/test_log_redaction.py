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
            "code": "M.C105_BAY.2.U.0b1c2d3e-aaaa-bbbb-cccc-0123456789ab",
            "body": "<p>private notes</p>",
            "subject": "1:1 with Ana",
        }
    )
    assert out["subject"] == "1:1 with Ana"
    assert all(v == REDACTED for k, v in out.items() if k != "subject")


@pytest.mark.parametrize(
    "code",
    [
        "reauthorization_required",
        "teams_link_unavailable",
        "invalid_grant",
        "ErrorItemNotFound",
        "AADSTS50020",
        "429",
        404,
        None,  # no error: a card with nothing wrong reads code=None, not [redacted]
    ],
)
def test_a_failure_code_is_kept(code: object) -> None:
    """Issue 9: operators read `code=reauthorization_required`, not `code=[redacted]`."""
    assert redact_mapping({"event": "command failed", "code": code})["code"] == code


@pytest.mark.parametrize(
    "fields",
    [
        {"code": "0.AXEAa1b2c3-d4e5.f6g7h8AgABAAIAAAD--DLA3VO7QrddgJg7WevrAgDs_wQA9P9"},
        {"code": "M.C105_BAY.2.U.0b1c2d3e-aaaa-bbbb-cccc-0123456789ab"},
        {"code": "anything", "state": "abc"},  # the OAuth callback's query
        {"code": "anything", "session_state": "abc"},
        {"authorization_code": "reauthorization_required"},
        {"auth_code": "x"},
        {"id_token": "x"},
        {"client_secret": "x"},
        {"code_verifier": "x"},
    ],
)
def test_an_authorization_code_and_known_secret_keys_are_redacted(fields: dict[str, str]) -> None:
    out = redact_mapping(fields)
    key = next(k for k in fields if k not in ("state", "session_state"))
    assert out[key] == REDACTED


def test_the_services_failure_lines_show_their_code(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json", service="test")
    get_logger("t").info("command failed", command_id="c-1", code="reauthorization_required")
    err = capsys.readouterr().err
    assert '"code": "reauthorization_required"' in err


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
