"""The dashboard's range parameters (pure): defaults, ISO parsing, 400s with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import HTTPException

from services.projector.api import resolve_range

NOW = datetime(2030, 6, 1, 12, tzinfo=UTC)


def test_defaults_are_now_to_thirty_days_later() -> None:
    assert resolve_range(None, None, NOW) == (NOW, NOW + timedelta(days=30))
    start = datetime(2030, 7, 1, tzinfo=UTC)
    assert resolve_range("2030-07-01T00:00:00Z", None, NOW) == (start, start + timedelta(days=30))


def test_offsets_are_normalised_to_utc_and_naive_means_utc() -> None:
    start, end = resolve_range("2030-07-01T02:00:00+02:00", "2030-07-02T00:00:00", NOW)
    assert start == datetime(2030, 7, 1, tzinfo=UTC) and start.tzinfo == UTC
    assert end == datetime(2030, 7, 2, tzinfo=UTC)
    # "+" decoded as a space by a careless client
    assert resolve_range("2030-07-01T02:00:00 02:00", None, NOW)[0] == start


@pytest.mark.parametrize(
    ("raw_from", "raw_to", "reason"),
    [
        ("2030-02-01T00:00:00Z", "2030-01-01T00:00:00Z", "must not be after"),
        ("2030-01-01T00:00:00Z", "2031-02-05T00:00:01Z", "at most 400 days"),
        ("next tuesday", None, "`from` is not an ISO 8601"),
        (None, "2030-13-01", "`to` is not an ISO 8601"),
    ],
)
def test_bad_ranges_are_400_with_a_reason(
    raw_from: str | None, raw_to: str | None, reason: str
) -> None:
    with pytest.raises(HTTPException) as caught:
        resolve_range(raw_from, raw_to, NOW)
    assert caught.value.status_code == 400
    assert reason in str(caught.value.detail)


def test_an_empty_range_and_exactly_400_days_are_fine() -> None:
    assert resolve_range("2030-01-01T00:00:00Z", "2030-01-01T00:00:00Z", NOW)[0] == datetime(
        2030, 1, 1, tzinfo=UTC
    )
    resolve_range("2030-01-01T00:00:00Z", "2031-02-05T00:00:00Z", NOW)  # 400 days
