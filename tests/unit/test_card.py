"""The Integrations card's words and button, from the stored snapshot (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.projector.domain.card import CardAction, card_for

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_each_state_says_what_works_and_what_to_do() -> None:
    full = card_for({"state": "connected", "can_write": True})
    assert (full.syncing, full.can_schedule, full.notice, full.action) == (True, True, None, None)
    read_only = card_for({"state": "connected", "can_write": False})
    assert (read_only.syncing, read_only.can_schedule) == (True, False)
    assert read_only.notice is not None and read_only.notice.code == "insufficient_permissions"
    assert read_only.action is CardAction.RECONNECT
    paused = card_for({"state": "reauthorization_required", "can_write": True})
    assert (paused.syncing, paused.can_schedule, paused.action) == (
        False,
        False,
        CardAction.RECONNECT,
    )
    gone = card_for({"state": "disconnected"})
    assert (gone.syncing, gone.notice, gone.action) == (False, None, CardAction.CONNECT)
    refused = card_for(
        {"state": "failed", "last_error": {"code": "admin_approval_required", "at": NOW}}
    )
    assert refused.notice is not None and refused.notice.message == "Need admin approval"
    assert refused.notice.hint == "Contact your IT admin to approve SMVue"


def test_a_failed_reconsent_hints_only_until_the_next_good_connect() -> None:
    error = {"code": "authorization_failed", "at": NOW}
    after = card_for(
        {
            "state": "connected",
            "can_write": True,
            "connected_at": NOW - timedelta(hours=1),
            "last_connect_error": error,
        }
    )
    assert after.notice is not None and after.notice.hint is not None
    assert after.notice.hint.startswith("Your last attempt to reconnect failed")
    assert (after.syncing, after.can_schedule, after.action) == (True, True, None)
    older = card_for(
        {
            "state": "connected",
            "can_write": True,
            "connected_at": NOW + timedelta(hours=1),
            "last_connect_error": error,
        }
    )
    assert older.notice is None
