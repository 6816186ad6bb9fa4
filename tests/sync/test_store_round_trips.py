"""MongoDB round trips of the syncer's work, counted by a pymongo command listener against
the real server: an import, an incremental change, a job's lease bookkeeping and a
change notice each cost a fixed, small number of commands — not one or two per event
(Graph and Kafka are fakes of our own ports here; MongoDB is real)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.syncer.adapters.graph_calendar import RoundResult
from services.syncer.adapters.store import INDEXES, SyncerStore
from services.syncer.domain.kept import AddressHasher
from services.syncer.domain.window import Window
from services.syncer.rounds import RoundRunner
from services.syncer.settings import SyncerSettings
from services.syncer.workers import ConnectionWorkers
from shared.audit import AuditLog
from shared.contracts.envelope import Envelope
from shared.graph.event import parse_delta_item
from shared.infra.endpoints import InfraEndpoints
from shared.mongo import ensure_indexes
from tests.fixtures.commands import Commands

pytestmark = pytest.mark.integration

CID = "conn-ann"
OWNER = "ann@contoso.test"


class Kafka:
    def __init__(self) -> None:
        self.sent: list[Envelope] = []

    async def publish(self, envelope: Envelope) -> None:
        self.sent.append(envelope)

    async def publish_all(self, envelopes: Sequence[Envelope]) -> None:
        self.sent.extend(envelopes)


class Graph:
    """Serves a given list of delta items as one round."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    async def delta_round(
        self, connection_id: str, delta_link: str | None, window: Window, page_size: int
    ) -> RoundResult:
        pages = max(1, -(-len(self.items) // page_size))
        parsed = [parse_delta_item(item) for item in self.items]
        return RoundResult(parsed, "https://graph/delta?token=next", pages, [])


def calendar(events: int, one_on_ones: int) -> list[dict[str, Any]]:
    """`events` events in the window, the first `one_on_ones` with a team member."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    items = []
    for n in range(events):
        attendee = "bob@contoso.test" if n < one_on_ones else f"someone{n}@fabrikam.test"
        moment = start + timedelta(hours=n)
        items.append(
            {
                "id": f"evt-{n}",
                "subject": f"meeting {n}",
                "start": {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (moment + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
                "organizer": {"emailAddress": {"address": OWNER}},
                "attendees": [{"emailAddress": {"address": attendee}, "type": "required"}],
                "lastModifiedDateTime": "2026-11-20T08:00:00Z",
            }
        )
    return items


@pytest.fixture
async def counted(
    infra: InfraEndpoints, mongo_db: str
) -> AsyncIterator[tuple[SyncerStore, Commands]]:
    listener = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.mongodb_uri, event_listeners=[listener], tz_aware=True
    )
    db = client[mongo_db]
    await ensure_indexes(db, INDEXES)
    store = SyncerStore(db)
    await db.rosters.insert_one(
        {
            "_id": "ann",
            "version": 1,
            "members": [{"member_id": "bob", "email": "bob@contoso.test", "display_name": "Bob"}],
        }
    )
    await store.set_state(CID, user_id="ann", owner_addresses=[OWNER], active=True)
    yield store, listener
    await client.close()


def runner(store: SyncerStore, graph: Graph) -> RoundRunner:
    kafka = Kafka()
    return RoundRunner(
        store,
        graph,  # type: ignore[arg-type]
        kafka,
        AuditLog(kafka, "syncer"),
        SyncerSettings(),
        hasher=AddressHasher.derived_from({"k1": b"k" * 32}, "k1"),
    )


async def test_an_import_costs_a_fixed_number_of_round_trips_not_two_per_event(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    graph = Graph()
    graph.items = calendar(200, 140)
    rounds = runner(store, graph)
    state = await store.state(CID)
    assert state is not None

    commands.measure()
    outcome = await rounds.run(state)
    trips = commands.count()

    assert outcome.upserted == 140 and outcome.full
    # set round_started_at, published (the round's ids + live ones), roster, a bulk write
    # for published, one for calendar_items (pymongo sends its upserts and its
    # delete-the-rest as two commands), save the deltaLink: 7, whatever the calendar's size.
    assert trips <= 7, Counter(commands.names)
    assert trips / outcome.upserted < 0.1
    assert await store.db.published.count_documents({}) == 140
    assert await store.db.calendar_items.count_documents({}) == 200


async def test_a_change_looks_up_only_the_meetings_it_names(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    graph = Graph()
    graph.items = calendar(200, 140)
    rounds = runner(store, graph)
    state = await store.state(CID)
    assert state is not None
    await rounds.run(state)
    state = await store.state(CID)
    assert state is not None
    changed = calendar(1, 1)[0] | {
        "subject": "moved",
        "lastModifiedDateTime": "2026-11-21T08:00:00Z",
    }
    graph.items = [changed]

    commands.measure()
    outcome = await rounds.run(state)
    trips = commands.count()

    assert outcome.upserted == 1 and not outcome.full
    assert trips <= 6, Counter(commands.names)
    published_finds = [n for n in commands.names if n == "find"]
    assert len(published_finds) == 2  # published (by id) + roster, not a scan per meeting
    docs = await store.published(CID, ["not-on-the-page"])
    assert docs == {}  # the lookup by ids returns only what it names


async def test_a_job_costs_two_round_trips_of_bookkeeping(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    ran: list[str] = []

    async def job(kind: Any, state: dict[str, Any]) -> None:
        ran.append(kind.value)

    await store.request(CID, "round", datetime.now(UTC))
    workers = ConnectionWorkers(store, SyncerSettings(), job)
    commands.measure()
    workers.kick(CID)
    while workers.tracked():
        await _settle()
    trips = commands.count()

    assert ran == ["round"]
    assert trips == 2, Counter(commands.names)  # take (lease + state), finish (+ release)
    state = await store.state(CID)
    assert state is not None
    assert state["pending"] == {} and state["has_pending"] is False
    assert state["lease_owner"] is None


async def test_a_change_notice_costs_one_conditional_write(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    now = datetime.now(UTC)
    await store.set_state(CID, round_started_at=now)

    commands.measure()
    covered = await store.request_if_active(
        CID, "round", now, unless_round_started_after=now - timedelta(seconds=5)
    )
    asked = await store.request_if_active(
        CID, "round", now, unless_round_started_after=now + timedelta(seconds=2)
    )
    await store.set_state(CID, active=False)
    paused = await store.request_if_active(CID, "round", now)
    trips = commands.count()

    assert (covered, asked, paused) == (False, True, False)
    assert trips == 4  # three requests and the pause: no read before any of them


async def _settle() -> None:
    import asyncio

    await asyncio.sleep(0.01)
