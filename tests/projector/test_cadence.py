"""Cadence rules (pure): held vs scheduled, cancelled ignored, median, overdue horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.projector.domain.cadence import (
    MeetingTimes,
    cadence_id,
    compute_cadence,
    overdue_horizon,
)

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)


def meeting(days_ago: float, cancelled: bool = False, minutes: int = 30) -> MeetingTimes:
    """A meeting starting `days_ago` days before NOW (negative: in the future)."""
    start = NOW - timedelta(days=days_ago)
    return MeetingTimes(start, start + timedelta(minutes=minutes), cancelled)


def test_weekly_pair_is_on_track() -> None:
    cadence = compute_cadence([meeting(d) for d in (28, 21, 14, 7, -7)], NOW)
    assert cadence.held_last_90_days == 4
    assert cadence.median_interval_days == 7.0
    assert cadence.last_held == NOW - timedelta(days=7)
    assert cadence.next_scheduled == NOW + timedelta(days=7)
    assert cadence.overdue_horizon_days == 14.0
    assert cadence.overdue is False


def test_order_of_input_does_not_matter() -> None:
    meetings = [meeting(d) for d in (3, 40, 17, -5, 30)]
    assert compute_cadence(meetings, NOW) == compute_cadence(list(reversed(meetings)), NOW)


def test_cancelled_meetings_count_for_nothing() -> None:
    meetings = [meeting(30), meeting(10, cancelled=True), meeting(-3, cancelled=True)]
    cadence = compute_cadence([*meetings, meeting(-20)], NOW)
    assert cadence.held_last_90_days == 1
    assert cadence.last_held == NOW - timedelta(days=30)
    assert cadence.next_scheduled == NOW + timedelta(days=20)  # not the cancelled one in 3
    assert cadence.median_interval_days is None
    assert cadence.overdue is True  # 30 days without one, and the next is 20 days away


def test_future_and_running_meetings_are_not_held() -> None:
    running = MeetingTimes(NOW - timedelta(minutes=10), NOW + timedelta(minutes=20))
    cadence = compute_cadence([meeting(-1), running], NOW)
    assert cadence.last_held is None
    assert cadence.held_last_90_days == 0
    assert cadence.next_scheduled == NOW + timedelta(days=1)
    # A meeting that ends exactly now has been held.
    just_ended = MeetingTimes(NOW - timedelta(minutes=30), NOW)
    assert compute_cadence([just_ended], NOW).last_held == just_ended.start


def test_a_meeting_in_progress_is_not_overdue() -> None:
    running = MeetingTimes(NOW - timedelta(minutes=10), NOW + timedelta(minutes=20))
    assert compute_cadence([meeting(60), running], NOW).overdue is False


def test_median_of_the_last_90_days_only() -> None:
    # Gaps 10, 20, 30 days in the window; the 200-days-ago one is outside it.
    cadence = compute_cadence([meeting(d) for d in (200, 70, 40, 20, 10)], NOW)
    assert cadence.held_last_90_days == 4
    assert cadence.median_interval_days == 20.0
    assert cadence.last_held == NOW - timedelta(days=10)
    even = compute_cadence([meeting(d) for d in (31, 21, 14, 7)], NOW)  # gaps 10, 7, 7
    assert even.median_interval_days == 7.0
    two_gaps = compute_cadence([meeting(d) for d in (24, 14, 7)], NOW)  # gaps 10, 7
    assert two_gaps.median_interval_days == 8.5


def test_last_held_before_the_window_is_still_the_last_held() -> None:
    cadence = compute_cadence([meeting(120)], NOW)
    assert cadence.last_held == NOW - timedelta(days=120)
    assert cadence.held_last_90_days == 0
    assert cadence.overdue is True


def test_horizon_is_one_and_a_half_median_intervals_but_at_least_14_days() -> None:
    assert overdue_horizon(None) == timedelta(days=14)
    assert overdue_horizon(7.0) == timedelta(days=14)  # 10.5 < 14
    assert overdue_horizon(30.0) == timedelta(days=45)
    monthly = [meeting(d) for d in (95, 65, 35)]
    assert compute_cadence(monthly, NOW).median_interval_days == 30.0
    assert compute_cadence(monthly, NOW).overdue is False  # 35 days < 45
    assert compute_cadence([meeting(d) for d in (110, 80, 50)], NOW).overdue is True


def test_overdue_needs_both_a_lapse_and_nothing_booked_within_the_horizon() -> None:
    assert compute_cadence([], NOW).overdue is True
    assert compute_cadence([meeting(20), meeting(-2)], NOW).overdue is False  # booked soon
    assert compute_cadence([meeting(20), meeting(-13.9)], NOW).overdue is False
    assert compute_cadence([meeting(20), meeting(-15)], NOW).overdue is True
    assert compute_cadence([meeting(13)], NOW).overdue is False  # held recently
    assert compute_cadence([meeting(-30)], NOW).overdue is True  # never held, far off


def test_pair_ids_ignore_email_case() -> None:
    assert cadence_id("ann", "Bob@Contoso.TEST") == cadence_id("ann", "bob@contoso.test")
    assert cadence_id("ann", "bob@contoso.test") == "ann:bob@contoso.test"
