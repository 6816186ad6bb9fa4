"""MongoDB round trips of the syncer's work, counted by a pymongo command listener against
the real server: an import, an incremental change, a job's lease bookkeeping and a
change notice each cost a fixed, small number of commands — not one or two per event
(Graph and Kafka are fakes of our own ports here; MongoDB is real)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.syncer.adapters.graph_calendar import RoundResult
from services.syncer.adapters.store import INDEXES, SyncerStore
from services.syncer.domain.jobs import Job
from services.syncer.domain.kept import AddressHasher
from services.syncer.domain.window import Window
from services.syncer.rounds import RoundRunner
from services.syncer.settings import SyncerSettings
from services.syncer.watchdog import Watchdog
from services.syncer.workers import ConnectionWorkers, Done
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
    roster = await db.rosters.find_one({"_id": "ann"})
    assert roster is not None
    await store.copy_roster(CID, roster["members"], roster["version"])  # as on_roster does
    yield store, listener
    await client.close()


def runner(store: SyncerStore, graph: Graph, settings: SyncerSettings | None = None) -> RoundRunner:
    kafka = Kafka()
    return RoundRunner(
        store,
        graph,  # type: ignore[arg-type]
        kafka,
        AuditLog(kafka, "syncer"),
        settings or SyncerSettings(),
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
    # the connection's items (with what was published of each: none yet), and one bulk
    # write on calendar_items: the new items' inserts (pymongo sends one command per run
    # of one kind; a full round's clean-up of what it found but did not list has nothing
    # to clean here): 2, whatever the calendar's size. The roster comes with the state
    # (its copy); the round's start is marked by the worker's take, and the deltaLink is
    # not saved by the round but returned, for the job's finishing write.
    assert trips <= 2, Counter(commands.names)
    # the items found absent are inserted, not upserted (SecantusDB inserts in a third of
    # an upsert's time): one insert command, no update nor delete
    assert commands.by_name() == {"find": 1, "insert": 1}, Counter(commands.names)
    assert outcome.save["delta_link"] == "https://graph/delta?token=next"
    assert trips / outcome.upserted < 0.1
    assert await store.db.calendar_items.count_documents({"published.live": True}) == 140
    # the 60 others: each with someone not on the team, a candidate (a hash of the address)
    assert await store.db.calendar_items.count_documents({}) == 200


async def test_no_filter_of_a_job_a_round_or_a_record_makes_the_local_server_scan(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """SecantusDB answers a filter with a top-level `$or` (`$and`, `$nor`, `$expr`) by
    scanning the whole collection, even beside an `_id` (at 40,000 calendar items an
    import's lookup took 1.1 s instead of 13 ms: `benchmarks/query_shapes.py`). None of what
    runs per connection, per job or per Kafka record sends one: an import and a change,
    taking, renewing, finishing and releasing a job's lease, a change notice (asked for,
    coalesced, and taking the lease in the request), a roster copy, a re-evaluation's
    read, the timer's wake-ups and its chore lease."""
    store, commands = counted
    graph = Graph()
    graph.items = calendar(20, 10)
    rounds = runner(store, graph)
    ttl = timedelta(seconds=30)
    now = datetime.now(UTC)

    commands.measure()
    await store.request(CID, "round", now)
    taken = await store.take(CID, "me", now, ttl)
    assert taken is not None
    imported = await rounds.run(taken)
    assert imported.full and imported.upserted == 10
    assert await store.lease(CID, "me", now, ttl)
    await store.finish(CID, "round", taken["pending"]["round"], "me", now, ttl, save=imported.save)
    state = await store.state(CID)
    assert state is not None
    graph.items = [calendar(1, 1)[0] | {"subject": "moved"}]
    assert not (await rounds.run(state)).full
    assert await store.request_if_active(CID, "round", now, unless_round_started_after=now)
    await store.release(CID, "me")
    assert await store.request_and_take(
        CID, "round", now, "me", ttl, unless_round_started_after=now
    )
    assert await store.take(CID, "me", now, ttl, ours=True) is not None
    await store.copy_roster(CID, [], 2)
    assert len(await store.items(CID)) == 20
    assert await store.with_pending(now + ttl) == [CID]
    assert await store.chore_lease("retry_cleanups", "me", now, ttl)
    assert await store.chore_lease("retry_cleanups", "me", now, ttl)  # renewed
    commands.count()

    assert commands.scanning == []
    assert len(commands.names) >= 15  # every step above was counted


async def test_a_change_looks_up_only_the_meetings_it_names(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    graph = Graph()
    graph.items = calendar(200, 140)
    rounds = runner(store, graph)
    state = await store.state(CID)
    assert state is not None
    imported = await rounds.run(state)
    await store.set_state(CID, **imported.save)  # as the job's finish does
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
    assert trips <= 2, Counter(commands.names)  # one find, one update command
    finds = [n for n in commands.names if n == "find"]
    assert len(finds) == 1  # the named items (by id), not a scan per meeting
    docs = await store.entries(CID, ["not-on-the-page"])
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
    trips = await kicked(workers, commands)

    assert ran == ["round"]
    assert trips == 2, Counter(commands.names)  # take (lease + state), finish (+ release)
    state = await store.state(CID)
    assert state is not None
    assert state["pending"] == {} and state["has_pending"] is False
    assert state["lease_owner"] is None


async def test_a_state_without_a_roster_copy_reads_the_roster_once_and_keeps_a_copy(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    await store.db.sync_state.update_one(
        {"_id": CID}, {"$unset": {"roster": "", "roster_version": ""}}
    )  # a state from before copies
    graph = Graph()
    graph.items = calendar(3, 2)
    rounds = runner(store, graph)
    state = await store.state(CID)
    assert state is not None

    commands.measure()
    first = await rounds.run(state)
    first_reads = Counter(commands.names)["find"]
    state = await store.state(CID)
    assert state is not None and state["roster_version"] == 1
    commands.measure()
    second = await rounds.run(state | first.save)
    second_reads = Counter(commands.names)["find"]

    assert first.one_on_ones == 2 and second.one_on_ones == 2  # the same team both times
    assert (first_reads, second_reads) == (2, 1)  # items + roster, then items only


async def test_a_roster_copy_is_never_replaced_by_an_older_one(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, _ = counted
    newer = [{"member_id": "eve", "email": "eve@contoso.test", "display_name": "Eve"}]
    await store.copy_roster(CID, newer, 3)
    await store.copy_roster(CID, [], 2)  # late: a connect's read from before version 3
    await store.copy_roster("conn-nobody", newer, 3)  # no state: nothing is created
    state = await store.state(CID)
    assert state is not None
    assert (state["roster"], state["roster_version"]) == (newer, 3)
    assert await store.state("conn-nobody") is None


async def test_what_a_job_returns_is_saved_by_its_finishing_write(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    saved = {"delta_link": "https://graph/delta?token=after", "last_round": {"items": 3}}

    async def job(kind: Any, state: dict[str, Any]) -> Done:
        return Done(save=saved)

    await store.request(CID, "round", datetime.now(UTC))
    workers = ConnectionWorkers(store, SyncerSettings(), job)
    trips = await kicked(workers, commands)

    assert trips == 2, Counter(commands.names)  # take, finish (+ release + the job's state)
    state = await store.state(CID)
    assert state is not None
    assert state["delta_link"] == saved["delta_link"] and state["last_round"] == {"items": 3}
    assert state["pending"] == {} and state["lease_owner"] is None


async def test_the_job_a_job_asks_for_next_is_asked_for_in_its_finishing_write(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """A connect ends by asking for a delta round (what changed between the import's
    delta and the subscription's creation was never notified): that request, the import's
    deltaLink and the lease's renewal are one write, and the round runs next from the
    state it returned — the two jobs cost three round trips of bookkeeping, not five."""
    store, commands = counted
    runs: list[tuple[str, str | None]] = []

    async def job(kind: Job, state: dict[str, Any]) -> Done:
        runs.append((kind.value, state.get("delta_link")))
        if kind is Job.CONNECT:
            return Done(save={"delta_link": "link-import"}, then=Job.ROUND)
        return Done(save={"delta_link": "link-round"})

    await store.request(CID, "connect", datetime.now(UTC))
    workers = ConnectionWorkers(store, SyncerSettings(), job)
    trips = await kicked(workers, commands)

    assert runs == [("connect", None), ("round", "link-import")]
    assert trips == 3, Counter(commands.names)  # take, finish + ask, finish (+ release)
    state = await store.state(CID)
    assert state is not None and state["delta_link"] == "link-round"
    assert state["pending"] == {} and state["has_pending"] is False
    assert state["lease_owner"] is None


async def test_a_job_asked_for_again_while_it_ran_still_saves_what_it_returned(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, _ = counted
    runs: list[str | None] = []

    async def job(kind: Any, state: dict[str, Any]) -> Done:
        runs.append(state.get("delta_link"))
        if len(runs) == 1:  # a notice asks for another round while this one runs
            await store.request(CID, "round", datetime.now(UTC) + timedelta(seconds=1))
        return Done(save={"delta_link": f"link-{len(runs)}"})

    await store.request(CID, "round", datetime.now(UTC))
    workers = ConnectionWorkers(store, SyncerSettings(), job)
    workers.kick(CID)
    await until_idle(workers)

    assert runs == [None, "link-1"]  # the second round starts from the first one's link
    state = await store.state(CID)
    assert state is not None and state["delta_link"] == "link-2"


async def test_finishing_a_job_asked_for_again_while_it_ran_is_one_write(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """Under load a change notice often asks for a round while one runs: that round's
    finish still saves, keeps the new ask and renews the lease in one write (it took
    three: the release and the clear, each refused, then the save). The worker heard of
    the ask (as a notice handled here kicks it), so it doesn't try the plain release."""
    store, commands = counted
    runs = 0

    async def job(kind: Any, state: dict[str, Any]) -> Done:
        nonlocal runs
        runs += 1
        if runs == 1:
            await store.request(CID, "round", datetime.now(UTC) + timedelta(seconds=1))
            workers.kick(CID)  # as the notice's handler does
        return Done(save={"delta_link": f"link-{runs}", "last_round": {"kind": "$x"}})

    await store.request(CID, "round", datetime.now(UTC))
    workers = ConnectionWorkers(store, SyncerSettings(), job)
    trips = await kicked(workers, commands)

    assert runs == 2
    # take, the notice's ask, finish (+ save + renew), finish (+ save + release)
    assert trips == 4, Counter(commands.names)
    state = await store.state(CID)
    assert state is not None and state["delta_link"] == "link-2"
    assert state["last_round"] == {"kind": "$x"}  # saved as given, not read as a field path
    assert state["pending"] == {} and state["has_pending"] is False
    assert state["lease_owner"] is None and state["lease_until"] is None


async def test_a_kick_during_a_job_whose_finish_failed_still_gets_its_look(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """The worker forgets a kick as its finishing write goes out (that write's state
    answers it); if the write fails, the kick is remembered again, so the ask it stood for
    runs now, not at the next timer tick."""
    store, _ = counted
    runs = 0
    fail_next_finish = True
    real_finish = store.finish

    async def flaky_finish(*args: Any, **kwargs: Any) -> Any:
        nonlocal fail_next_finish
        if fail_next_finish:
            fail_next_finish = False
            raise ConnectionError("the server went away")
        return await real_finish(*args, **kwargs)

    store.finish = flaky_finish  # type: ignore[method-assign]

    async def job(kind: Any, state: dict[str, Any]) -> Done:
        nonlocal runs
        runs += 1
        if runs == 1:
            await store.request(CID, "round", datetime.now(UTC) + timedelta(seconds=1))
            workers.kick(CID)  # as the notice's handler does
        return Done(save={"delta_link": f"link-{runs}"})

    await store.request(CID, "round", datetime.now(UTC))
    workers = ConnectionWorkers(store, SyncerSettings(), job)
    workers.kick(CID)
    await until_idle(workers)

    assert runs == 2  # looked again at once, from the durable ask
    state = await store.state(CID)
    assert state is not None and state["delta_link"] == "link-2"
    assert state["pending"] == {} and state["lease_owner"] is None


async def test_finishing_leaves_a_lease_another_instance_took_alone(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """This instance stalled past its lease and another took the connection: the late
    finish clears its own job but neither releases nor renews the other's lease."""
    store, _ = counted
    now = datetime.now(UTC)
    ttl = timedelta(seconds=30)
    await store.request(CID, "round", now)
    mine = await store.take(CID, "me", now, ttl)
    assert mine is not None
    later = now + ttl + timedelta(seconds=1)
    theirs = await store.take(CID, "other", later, ttl)
    assert theirs is not None
    late = later + timedelta(seconds=2)
    left = await store.finish(CID, "round", mine["pending"]["round"], "me", late, ttl)
    assert left is not None and left["lease_owner"] == "other"
    assert left["lease_until"] == theirs["lease_until"]
    assert left["pending"] == {}


async def test_the_watchdog_looks_in_three_queries_whatever_the_number_of_connections(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    now = datetime.now(UTC)
    for n in range(30):
        await store.set_state(f"conn-{n}", user_id=f"u{n}", active=True, last_round_at=now)
        await store.put_subscription(f"conn-{n}", f"sub-{n}", now + timedelta(days=1), "h")
    await store.set_state("conn-stale", user_id="s", active=True, last_round_at=now)
    await store.put_subscription("conn-stale", "sub-stale", now - timedelta(minutes=1), "h")

    class Idle:
        def kick(self, cid: str) -> None: ...
        async def cancel(self, cid: str) -> None: ...

    watchdog = Watchdog(store, Idle(), AuditLog(Kafka(), "syncer"), SyncerSettings())  # type: ignore[arg-type]
    commands.measure()
    relaunched = await watchdog.check(now)
    looked = [n for n in commands.names if n == "find"]

    assert [cid for cid, _ in relaunched] == ["conn-stale"]
    # expired subscriptions, candidates, (their subscriptions): not one per connection
    assert len(looked) <= 3, Counter(commands.names)


async def test_taking_a_pending_round_marks_its_start_in_the_same_write(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, commands = counted
    before = datetime.now(UTC) - timedelta(seconds=1)
    ttl = timedelta(seconds=30)
    await store.request(CID, "renew", before)
    commands.measure()
    renewing = await store.take(CID, "me", datetime.now(UTC), ttl)
    assert renewing is not None and renewing.get("round_started_at") is None  # no round
    assert commands.count() == 1
    await store.release(CID, "me")
    await store.request(CID, "round", before)
    commands.measure()
    now = datetime.now(UTC)
    rounding = await store.take(CID, "me", now, ttl)
    assert commands.count() == 1
    assert rounding is not None and rounding["lease_owner"] == "me"
    assert abs(rounding["round_started_at"] - now) < timedelta(milliseconds=1)
    assert await store.take(CID, "another", now, ttl) is None  # the lease holds


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


def recording_workers(store: SyncerStore) -> tuple[ConnectionWorkers, list[str], timedelta]:
    """Workers whose jobs only record their kind; with the lease's lifetime."""
    ran: list[str] = []

    async def job(kind: Any, state: dict[str, Any]) -> None:
        ran.append(kind.value)

    settings = SyncerSettings()
    return ConnectionWorkers(store, settings, job), ran, timedelta(seconds=settings.lease_seconds)


async def test_a_round_asked_for_while_the_lease_is_free_takes_it_in_the_request(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """A change notice for a connection nobody works on: the request takes the lease and
    marks the round's start in the same write, and the worker starts from that state —
    the round's bookkeeping is two round trips (request + take, finish), not three."""
    store, commands = counted
    workers, ran, ttl = recording_workers(store)
    now = datetime.now(UTC)
    commands.measure()
    assert workers.can_start(CID)
    taken = await store.request_and_take(
        CID, "round", now, workers.owner, ttl, unless_round_started_after=now
    )
    assert taken is not None and taken["lease_owner"] == workers.owner
    assert abs(taken["round_started_at"] - now) < timedelta(milliseconds=1)
    workers.start(CID, taken)
    await until_idle(workers)
    trips = commands.count()

    assert ran == ["round"]
    assert trips == 2, Counter(commands.names)
    state = await store.state(CID)
    assert state is not None and state["pending"] == {} and state["lease_owner"] is None

    # Not taken: a round began after the notice (coalesced), or another instance holds
    # the lease (the caller then only requests), or the connection is paused.
    later = datetime.now(UTC)
    assert (
        await store.request_and_take(
            CID, "round", later, "me", ttl, unless_round_started_after=now - timedelta(seconds=1)
        )
        is None
    )
    await store.set_state(CID, lease_owner="another", lease_until=later + ttl)
    assert await store.request_and_take(CID, "round", later, "me", ttl) is None
    state = await store.state(CID)
    assert state is not None and state["pending"] == {}  # nothing recorded by a miss
    await store.set_state(CID, lease_owner=None, lease_until=None, active=False)
    assert await store.request_and_take(CID, "round", later, "me", ttl) is None


async def test_a_worker_given_a_stale_lease_takes_it_again_before_working(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """A taken state that waited too long (for a slot) is renewed before any work: the
    lease may have passed to another instance meanwhile."""
    store, _ = counted
    workers, ran, ttl = recording_workers(store)
    long_ago = datetime.now(UTC) - ttl
    taken = await store.request_and_take(CID, "round", long_ago, workers.owner, ttl)
    assert taken is not None
    await store.set_state(CID, lease_owner="another", lease_until=datetime.now(UTC) + ttl)
    workers.start(CID, taken)
    await until_idle(workers)
    assert ran == []  # the other instance holds it: this one did nothing
    state = await store.state(CID)
    assert state is not None and "round" in state["pending"]


async def until_idle(workers: ConnectionWorkers) -> None:
    """Until the workers hold no task and no wake-up for any connection."""
    while workers.tracked():
        await asyncio.sleep(0.01)


async def kicked(workers: ConnectionWorkers, commands: Commands) -> int:
    """Kicks the connection's worker and counts the round trips until it is idle."""
    commands.measure()
    workers.kick(CID)
    await until_idle(workers)
    return commands.count()


async def test_an_item_keeps_its_publication_when_what_is_kept_of_it_goes(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, _ = counted
    one = {"kind": "one_on_one", "event": {"id": "e1", "subject": "1:1"}}
    await store.apply_round(
        CID,
        published=[("m1", "e1", 5, "h1", False), ("m4", "e4", 2, "h4", True)],
        put_items={"e1": one, "e2": {"kind": "private"}, "e3": {"kind": "not_one_on_one"}},
        drop_items=set(),
    )
    await store.apply_round(
        CID,
        published=[("m1", "e1", 6, None, False)],  # retracted: a tombstone
        put_items={"e4": {"kind": "cancelled", "event": {"id": "e4"}}},
        drop_items={"e1", "e2"},
        left_out={"e3"},  # a full round found e3 but did not list it: out of the window
    )
    docs = {d["event_id"]: d async for d in store.db.calendar_items.find({})}

    assert sorted(docs) == ["e1", "e4"]  # e2 (dropped) and e3 (not kept) had no publication
    assert "kind" not in docs["e1"] and "event" not in docs["e1"]
    assert docs["e1"]["published"] == {
        "meeting_id": "m1",
        "version": 6,
        "hash": None,
        "live": False,
        "cancelled": False,
    }
    assert docs["e4"]["kind"] == "cancelled" and docs["e4"]["published"]["version"] == 2
    await store.apply_round(CID, published=[], put_items={}, drop_items=set(), forget={"m4"})
    assert [d["event_id"] async for d in store.db.calendar_items.find({})] == ["e1"]
    assert await store.items(CID) == []  # nothing kept, only a tombstone


async def test_published_versions_of_an_earlier_version_are_moved_into_the_items(
    counted: tuple[SyncerStore, Commands],
) -> None:
    store, _ = counted
    await store.apply_round(
        CID,
        published=[("m1", "e1", 9, "new", False)],
        put_items={"e1": {"kind": "one_on_one", "event": {"id": "e1"}}},
        drop_items=set(),
    )
    await store.db.published.insert_many(
        [
            {"_id": "m1", "connection_id": CID, "event_id": "e1", "version": 3, "hash": "old"},
            {"_id": "m2", "connection_id": CID, "event_id": "e2", "version": 4, "hash": None},
        ]
    )
    assert await store.migrate_published(batch=1) == 2
    assert await store.migrate_published() == 0  # again: nothing left to move
    docs = {d["event_id"]: d async for d in store.db.calendar_items.find({})}
    assert docs["e1"]["published"]["version"] == 9  # the newer one stays
    assert docs["e1"]["kind"] == "one_on_one"
    assert docs["e2"]["published"] == {
        "meeting_id": "m2",
        "version": 4,
        "hash": None,
        "live": False,
        "cancelled": False,
    }
    assert await store.db.published.count_documents({}) == 0


async def test_full_rounds_at_once_are_bounded_per_instance(
    counted: tuple[SyncerStore, Commands],
) -> None:
    import asyncio

    store, _ = counted

    class SlowGraph(Graph):
        def __init__(self) -> None:
            super().__init__()
            self.now = self.most = 0

        async def delta_round(
            self, connection_id: str, delta_link: str | None, window: Window, page_size: int
        ) -> RoundResult:
            self.now += 1
            self.most = max(self.most, self.now)
            await asyncio.sleep(0.05)
            self.now -= 1
            return await super().delta_round(connection_id, delta_link, window, page_size)

    graph = SlowGraph()
    graph.items = calendar(2, 1)
    rounds = runner(store, graph, SyncerSettings(max_parallel_full_rounds=2))
    states = []
    for n in range(6):
        await store.set_state(f"conn-{n}", user_id="ann", owner_addresses=[OWNER], active=True)
        state = await store.state(f"conn-{n}")
        assert state is not None
        states.append(state)
    outcomes = await asyncio.gather(*(rounds.run(state) for state in states))

    assert all(o.full and o.one_on_ones == 1 for o in outcomes)
    assert graph.most == 2  # imports of six mailboxes, two at a time


async def test_an_item_written_since_it_was_found_absent_is_updated_not_lost(
    counted: tuple[SyncerStore, Commands],
) -> None:
    """A worker that lost the lease wrote the item between the round's lookup and its
    write: the insert's duplicate key makes the round write everything again as upserts."""
    store, _ = counted
    await store.apply_round(
        CID,
        published=[("m-old", "evt-1", 5, "old-hash", False)],
        put_items={"evt-1": {"kind": "candidate", "other": "h1"}},
        drop_items=set(),
    )

    await store.apply_round(
        CID,
        published=[
            ("m-1", "evt-1", 7, "new-hash", False),
            ("m-2", "evt-2", 7, "hash-2", False),
        ],
        put_items={"evt-1": {"kind": "not_one_on_one"}, "evt-2": {"kind": "not_one_on_one"}},
        drop_items=set(),
        absent={"evt-1", "evt-2"},  # as the round's lookup had found them
    )

    items = await store.entries(CID, ["evt-1", "evt-2"])
    assert set(items) == {"evt-1", "evt-2"}
    assert items["evt-1"]["published"]["version"] == 7
    assert items["evt-1"]["published"]["hash"] == "new-hash"
    assert items["evt-1"]["kind"] == "not_one_on_one" and "other" not in items["evt-1"]  # unset
    assert items["evt-2"]["published"]["meeting_id"] == "m-2"
