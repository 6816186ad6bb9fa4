"""Version derivation, job choice, notice coalescing and the sync window (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.syncer.domain.card import card_due
from services.syncer.domain.jobs import Job, backoff_seconds, next_job, notice_already_covered
from services.syncer.domain.window import needs_new_round, window_for
from shared.contracts.meeting_versions import next_version, to_micros

NOW = datetime(2026, 11, 25, 15, 30, tzinfo=UTC)


def test_version_is_the_later_of_graph_change_and_observation() -> None:
    assert next_version(NOW) == to_micros(NOW)
    later = NOW + timedelta(seconds=5)
    assert next_version(NOW, later) == to_micros(later)
    assert next_version(later, NOW) == to_micros(later)


def test_version_beats_the_previous_one_even_when_clocks_disagree() -> None:
    future = to_micros(NOW + timedelta(days=7))  # Graph's clock ahead of ours
    assert next_version(NOW, None, previous=future) == future + 1


def test_a_roster_driven_retraction_outranks_the_snapshot_it_retracts() -> None:
    upsert = next_version(NOW, NOW - timedelta(days=1))
    retraction = next_version(NOW + timedelta(milliseconds=1), None, upsert)
    readd = next_version(NOW + timedelta(milliseconds=2), NOW - timedelta(days=1), retraction)
    assert upsert < retraction < readd


def test_disconnect_and_connect_run_even_when_paused_other_jobs_do_not() -> None:
    pending = {"round": NOW, "renew": NOW, "disconnect": NOW}
    assert next_job(pending, active=True) is Job.DISCONNECT
    assert next_job({"round": NOW, "renew": NOW}, active=True) is Job.RENEW
    assert next_job({"round": NOW}, active=False) is None
    assert next_job({"round": NOW, "connect": NOW}, active=False) is Job.CONNECT
    assert next_job({}, active=True) is None


def test_a_notice_is_covered_only_by_a_round_that_began_clearly_after_it() -> None:
    margin = timedelta(seconds=2)
    assert not notice_already_covered(NOW, None, margin)
    assert not notice_already_covered(NOW, NOW + timedelta(seconds=1), margin)  # skew: run
    assert notice_already_covered(NOW, NOW + timedelta(seconds=3), margin)
    assert not notice_already_covered(NOW, NOW - timedelta(seconds=1), margin)


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff_seconds(n, 1, 5) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_window_is_whole_days_from_the_past_into_the_future() -> None:
    window = window_for(NOW, past_days=90, future_days=30)
    today = datetime(2026, 11, 25, tzinfo=UTC)
    assert window.start == today - timedelta(days=90)
    assert window.end == today + timedelta(days=31)
    assert window.contains(NOW + timedelta(days=30))


def test_the_window_slides_once_a_day() -> None:
    current = window_for(NOW, 90, 30)
    assert not needs_new_round(current, window_for(NOW + timedelta(hours=8), 90, 30))
    assert needs_new_round(current, window_for(NOW + timedelta(hours=9), 90, 30))
    assert needs_new_round(None, current)


def test_a_round_refreshes_the_card_when_asked_for_or_due_not_every_time() -> None:
    every = timedelta(seconds=60)
    recent = {"card_synced_at": NOW - timedelta(seconds=10)}
    assert not card_due(recent, NOW, every, sync_now_waiting=False)  # a notice's round
    assert card_due(recent, NOW, every, sync_now_waiting=True)  # a Sync Now waits for it
    assert card_due({"card_synced_at": NOW - every}, NOW, every, sync_now_waiting=False)
    assert card_due({"card_synced_at": None}, NOW, every, sync_now_waiting=False)  # an error
    assert card_due({}, NOW, every, sync_now_waiting=False)
    naive = {"card_synced_at": (NOW - timedelta(seconds=10)).replace(tzinfo=None)}
    assert not card_due(naive, NOW, every, sync_now_waiting=False)
