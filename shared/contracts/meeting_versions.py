"""Meeting versions: a number that only grows per meeting, so consumers can drop stale ones.
A contract rule: both producers of meeting events (syncer, writer) derive versions here.

version = max(Graph's lastModifiedDateTime in µs, the syncer's observation time in µs,
previous published version + 1).

- Graph's lastModifiedDateTime orders changes Graph made to the event.
- Graph's data alone is not enough: a roster change retracts (or re-adds) a meeting whose
  Graph data did not change, and that decision must beat the earlier one; the syncer's
  observation time does (work per connection is serial, so it grows).
- Clocks disagree (Graph's, the syncer's): an event modified "in the future" by a skewed
  clock would make the next retraction, versioned by the syncer's clock, look stale. The
  previous version + 1 rules that out; the syncer keeps the last version per meeting,
  retracted ones included (a tombstone), for exactly this.
"""

from __future__ import annotations

from datetime import UTC, datetime


def to_micros(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1_000_000)


def next_version(
    observed_at: datetime, last_modified: datetime | None = None, previous: int | None = None
) -> int:
    candidates = [to_micros(observed_at)]
    if last_modified is not None:
        candidates.append(to_micros(last_modified))
    if previous is not None:
        candidates.append(previous + 1)
    return max(candidates)
