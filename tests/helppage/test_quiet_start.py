"""Logs an operator can use (issue 9 item 10): no raw library noise — MSAL's
"response_mode='form_post' is recommended" UserWarning on every connect, aiokafka's
"Group Coordinator Request failed: GroupCoordinatorNotAvailableError" ERROR at every start —
while every other warning and coordinator error still shows."""

from __future__ import annotations

import logging
import warnings

import pytest
from aiokafka.errors import GroupAuthorizationFailedError, GroupCoordinatorNotAvailableError
from msal.oauth2cli.oauth2 import Client

from shared.identity.msal_app import ignore_response_mode_warning
from shared.observability.logging import configure_logging

COORDINATOR = "aiokafka.consumer.group_coordinator"


def msal_auth_request(response_mode: str) -> list[warnings.WarningMessage]:
    """What MSAL's own code warns while building an authorization request URL."""
    client = Client(
        {"authorization_endpoint": "https://login.test/authorize", "token_endpoint": "x"},
        client_id="app",
    )
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ignore_response_mode_warning()  # as importing shared.identity.msal_app does
        client._build_auth_request_uri("code", response_mode=response_mode)
        warnings.warn_explicit(
            "another MSAL warning", UserWarning, "oauth2.py", 1, module="msal.oauth2cli.oauth2"
        )
    return seen


def test_msals_response_mode_warning_and_only_it_is_filtered() -> None:
    with warnings.catch_warnings(record=True) as unfiltered:
        warnings.simplefilter("always")
        Client(
            {"authorization_endpoint": "https://login.test/authorize", "token_endpoint": "x"},
            client_id="app",
        )._build_auth_request_uri("code", response_mode="query")
    assert ["form_post" in str(w.message) for w in unfiltered] == [True]  # MSAL does warn
    assert [str(w.message) for w in msal_auth_request("query")] == ["another MSAL warning"]


def test_the_coordinator_not_yet_available_error_is_lowered_others_stay(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json", service="test")
    log = logging.getLogger(COORDINATOR)
    log.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    log.error("Group Coordinator Request failed: %s", GroupAuthorizationFailedError("g"))
    log.error("Heartbeat failed: %r", GroupCoordinatorNotAvailableError())
    err = capsys.readouterr().err
    assert "GroupCoordinatorNotAvailableError" not in err.split("Heartbeat")[0]
    assert "GroupAuthorizationFailedError" in err
    assert "Heartbeat failed" in err
    configure_logging("DEBUG", "json", service="test")  # an operator asking for everything
    log.error("Group Coordinator Request failed: %s", GroupCoordinatorNotAvailableError())
    shown = [line for line in capsys.readouterr().err.splitlines() if "Coordinator" in line]
    assert len(shown) == 1 and '"level": "debug"' in shown[0], shown
    configure_logging("INFO", "json", service="test")
