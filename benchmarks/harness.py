"""What every benchmark shares: the infrastructure, run settings, the services as separate
processes (production wiring, `smvue-sync run <name>`), their MongoDB round trips and
peak RSS, nearest-rank percentiles, and clean-up.

- `infrastructure()`: `KAFKA_BOOTSTRAP_SERVERS` + `MONGODB_URI` when both are set, else a
  Kafka + MongoDB of our own (`LocalInfra` on free ports, stopped at the end).
- `benchmark_settings(endpoints)`: a unique topic prefix, database, ports and token key.
- `ServiceProcess`: one service in its own process. It runs through this module
  (`python -m benchmarks.harness serve <name> <counts file>`), which registers a pymongo
  command listener before the service starts: every command the service sends (a round
  trip each) is counted by name and written to the counts file, so a benchmark can
  report round trips per unit of work without touching the production code. The server's
  own `serverStatus` counters would also count other clients of a shared server.
- `peak_rss_mib(pid)`: the process's high-water mark (`VmHWM`).
- `Figures`, `benchmark_parser`, `report_and_exit`, `trips_text`, `rss_text`: what every
  benchmark's command line and report share (`--json`, the infrastructure around the run,
  the round-trip and RSS lines, the exit status).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from pymongo import AsyncMongoClient

from shared.contracts.connections import connection_id_for
from shared.contracts.roster import Roster, RosterUpdated, TeamMember
from shared.credentials.cipher import generate_key
from shared.infra.endpoints import InfraEndpoints
from shared.infra.local import LocalInfra
from shared.infra.paths import smvue_home
from shared.infra.ports import free_port
from shared.infra.selection import session_home
from shared.messaging.broker import create_broker
from shared.messaging.publisher import KafkaPublisher
from shared.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
# The emulator (tests/fixtures/emulator.py) is a uvicorn server with its default idle
# keep-alive: it closes a connection idle that long. A client that keeps idle connections
# as long (httpx's default is 5 s too) races it: a request sent on a connection the server
# is just closing gets "Server disconnected without sending a response". The load
# generators' clients give idle connections up well before the server does.
EMULATOR_KEEP_ALIVE_SECONDS = 5.0
CLIENT_KEEPALIVE_EXPIRY_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 90.0
_NOT_ROUND_TRIPS = frozenset({"hello", "ismaster", "isMaster", "endSessions"})


# --- figures ----------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[min(len(sorted_values), max(1, rank)) - 1]


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 2) if baseline > 0 else math.inf


# --- reports ----------------------------------------------------------------------------------


class Figures:
    """A benchmark's report (a dataclass): `to_json` for `--json`."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload, no-any-return]


FiguresT = TypeVar("FiguresT", bound=Figures)


def trips_text(trips: Mapping[str, int]) -> str:
    """`ingress 4, syncer 2308` (per service, or per command)."""
    return ", ".join(f"{k} {v}" for k, v in trips.items())


def rss_text(rss: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f} MiB" for k, v in rss.items())


def benchmark_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """A benchmark's command line; `--json` is everyone's."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def report_and_exit(
    args: argparse.Namespace,
    run: Callable[..., Coroutine[Any, Any, FiguresT]],
    text: Callable[[FiguresT], str],
    failed: Callable[[FiguresT], bool],
) -> int:
    """`run(endpoints, **options)` on `infrastructure()` — the options are the command
    line's but `--json`, named as `run`'s keywords —, prints its report (text or JSON); the
    exit status: 1 when `failed(report)` (records missing or doubled, a timeout...), else 0."""
    options = {name: value for name, value in vars(args).items() if name != "json"}
    with infrastructure() as endpoints:
        report = asyncio.run(run(endpoints, **options))
    print(json.dumps(report.to_json(), indent=2) if args.json else text(report))
    return 1 if failed(report) else 0


# --- settings and infrastructure --------------------------------------------------------------


def benchmark_settings(endpoints: InfraEndpoints, **overrides: Any) -> Settings:
    """Settings of one run: its own topic prefix, database, ports and token key."""
    tag = uuid.uuid4().hex[:10]
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
        "mongodb_uri": endpoints.mongodb_uri,
        "mongodb_database": f"bench_{tag}",
        "topic_prefix": f"bench{tag}.",
        "ingress_port": free_port(),
        "syncer_port": free_port(),
        "writer_port": free_port(),
        "projector_port": free_port(),
        "http_host": "127.0.0.1",
        "token_keys": {"k1": SecretStr(generate_key())},
        "token_active_key_id": "k1",
        "log_level": "WARNING",
        "shutdown_grace_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def service_environment(
    settings: Settings, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a service process: the run's settings, minus anything inherited."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("SMVUE_") and name not in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI")
    }
    for name, value in settings:
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, dict):
            value = {
                k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in value.items()
            }
        elif isinstance(value, list):
            value = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        if name in ("kafka_bootstrap_servers", "mongodb_uri"):
            env[name.upper()] = text
        else:
            env[f"SMVUE_{name.upper()}"] = text
    env.update(extra or {})
    return env


@contextlib.contextmanager
def infrastructure() -> Iterator[InfraEndpoints]:
    """KAFKA_BOOTSTRAP_SERVERS + MONGODB_URI when both are set, else a LocalInfra of our own
    on free ports (never a developer's `infra up`), stopped and removed at the end."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongo = os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield InfraEndpoints(kafka, mongo)
        return
    with session_home(smvue_home() / "benchmark-infra") as home:
        infra = LocalInfra(home / "infra", prefer_default_ports=False)
        try:
            yield infra.up()
        finally:
            infra.down()


async def clean_up(settings: Settings) -> None:
    """Drops the run's database and topics (they are unique to it)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongodb_uri)
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(settings.topic_prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


# --- services as processes --------------------------------------------------------------------


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size (VmHWM), MiB; NaN when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return math.nan


def records_handled(metrics_text: str, service: str, topic: str) -> int:
    """`smvue_records_handled_total{service, topic}` in a Prometheus text exposition."""
    wanted = f'smvue_records_handled_total{{service="{service}",topic="{topic}"}}'
    for line in metrics_text.splitlines():
        if line.startswith(wanted):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


class ServiceProcess:
    """`smvue-sync run <name>` in its own process, its MongoDB commands counted."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        scratch: Path,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.log_path = scratch / f"{name}.log"
        self.counts_path = scratch / f"{name}.counts.json"
        self._env = service_environment(settings, extra_env)
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_rss_mib = math.nan

    @property
    def port(self) -> int:
        return int(getattr(self.settings, f"{self.name}_port"))

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "benchmarks.harness",
            "serve",
            self.name,
            str(self.counts_path),
        ]
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def commands(self, *, by_collection: bool = False) -> Counter[str]:
        """MongoDB commands the service sent so far, by name (`update`), or by name and
        collection (`update sync_state`)."""
        try:
            counted = Counter(json.loads(self.counts_path.read_text()))
        except (OSError, ValueError):
            return Counter()
        if by_collection:
            return counted
        by_name: Counter[str] = Counter()
        for key, n in counted.items():
            by_name[key.split(" ", 1)[0]] += n
        return by_name

    def round_trips(self) -> int:
        return sum(self.commands().values())

    def waited_ms(self) -> Counter[str]:
        """Milliseconds the service waited for MongoDB's answers so far (send to answer,
        as pymongo's command monitor times them), by command and collection: where a run's
        database time goes."""
        try:
            return Counter(json.loads(_waits_path(str(self.counts_path)).read_text()))
        except (OSError, ValueError):
            return Counter()

    def sample_rss(self) -> float:
        if self.process is not None and self.process.poll() is None:
            self.peak_rss_mib = peak_rss_mib(self.process.pid)
        return self.peak_rss_mib

    def cpu_seconds(self) -> float:
        """CPU seconds the running service has used so far (NaN when not running)."""
        running = self.process is not None and self.process.poll() is None
        return cpu_seconds(self.process.pid) if running and self.process else math.nan

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.sample_rss()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    async def records_handled(self, topic: str) -> int:
        """Records of `topic` the service handled (applied; its /metrics), not the database:
        asking the database would cost it the work being measured (SecantusDB counts a
        collection by scanning it under its storage lock)."""
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as client:
            answer = await client.get("/metrics")
        answer.raise_for_status()
        return records_handled(answer.text, self.name, topic)

    async def wait_ready(self) -> None:
        """Until /readyz says 200."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}:\n"
                        + log_tail(self.log_path)
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/readyz")).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} was not ready within {READY_TIMEOUT_SECONDS:.0f}s")


@contextlib.asynccontextmanager
async def services(
    names: Sequence[str],
    settings: Settings,
    scratch: Path,
    extra_env: Mapping[str, str] | None = None,
) -> Any:
    """The named services as processes, ready; stopped (SIGTERM) at the end. When the
    benchmark fails inside (a connect refused, an import that never ends), each service's
    log tail goes to stderr first: the scratch folder holding the logs goes with the run."""
    running = {name: ServiceProcess(name, settings, scratch, extra_env) for name in names}
    try:
        for process in running.values():
            process.start()
        for process in running.values():
            await process.wait_ready()
        yield running
    except Exception:
        for process in running.values():
            print(f"--- {process.name}\n{log_tail(process.log_path)}", file=sys.stderr)
        raise
    finally:
        for process in running.values():
            process.stop()


def round_trips(running: Mapping[str, ServiceProcess]) -> dict[str, int]:
    return {name: process.round_trips() for name, process in running.items()}


def commands(
    running: Mapping[str, ServiceProcess], *, by_collection: bool = False
) -> dict[str, Counter[str]]:
    """Each service's MongoDB commands so far, by name (or name and collection)."""
    return {
        name: process.commands(by_collection=by_collection) for name, process in running.items()
    }


def waits(running: Mapping[str, ServiceProcess]) -> dict[str, Counter[str]]:
    """Each service's MongoDB wait so far (ms), by command and collection."""
    return {name: process.waited_ms() for name, process in running.items()}


def waits_since(
    before: Mapping[str, Counter[str]], after: Mapping[str, Counter[str]], top: int = 8
) -> dict[str, float]:
    """The `top` largest MongoDB waits between two `waits()` readings, seconds, keyed
    `service command collection` (largest first)."""
    spent = Counter(
        {
            f"{name} {key}": (ms - before.get(name, Counter()).get(key, 0.0)) / 1000
            for name, now in after.items()
            for key, ms in now.items()
        }
    )
    return {key: round(seconds, 2) for key, seconds in spent.most_common(top)}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (`/proc/<pid>/stat`); NaN when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


def waits_text(spent: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f} s" for k, v in spent.items())


def commands_since(
    before: Mapping[str, Counter[str]], after: Mapping[str, Counter[str]]
) -> dict[str, dict[str, int]]:
    """Per service, the commands sent between two `commands()` readings (none left out)."""
    return {
        name: dict((now - before.get(name, Counter())).most_common()) for name, now in after.items()
    }


# --- the emulated cloud: mailboxes, calendars, connecting, the read model -------------------

SERVICE_TOKEN = "test-service-token"  # what tests/fixtures/connect.connect_user presents
SYNC_SERVICES = ("ingress", "syncer", "projector")


@dataclass
class Mailbox:
    user_id: str  # SMVue's user id of the manager
    graph_id: str  # the emulator's user id
    mail: str
    members: list[str]  # team members' addresses
    one_on_ones: int = 0  # 1:1 occurrences the read model must end up with
    singles: list[str] = field(default_factory=list)  # event ids of single 1:1s

    @property
    def connection_id(self) -> str:
        return connection_id_for(self.user_id)


def client_limits() -> httpx.Limits:
    """The pool of a client acting as a person: idle connections closed before the
    emulator would close them (EMULATOR_KEEP_ALIVE_SECONDS)."""
    return httpx.Limits(keepalive_expiry=CLIENT_KEEPALIVE_EXPIRY_SECONDS)


@dataclass
class Cloud:
    emulator: Any  # tests.fixtures.emulator.RunningEmulator
    settings: Settings
    tenant_id: str
    mailboxes: list[Mailbox] = field(default_factory=list)

    def token(self, mailbox: Mailbox) -> str:
        minted: str = self.emulator.state.identity.mint_access_token(
            mailbox.graph_id, "Calendars.ReadWrite"
        )
        return minted

    def graph(self, mailbox: Mailbox) -> httpx.AsyncClient:
        """A plain HTTP client acting as the person (or as the Graph floor's reader). It
        reads immutable ids, as the system does (ADR 0015), so its ids match the read model's."""
        headers = {
            "Authorization": f"Bearer {self.token(mailbox)}",
            "Prefer": 'IdType="ImmutableId"',
        }
        return self.emulator.client(  # type: ignore[no-any-return]
            headers=headers, timeout=60.0, limits=client_limits()
        )


@contextlib.asynccontextmanager
async def emulated_cloud(endpoints: InfraEndpoints) -> Any:
    """The Graph + identity emulator (in this process) and the run's settings pointing
    the services at it, as production points them at Microsoft."""
    from tests.fixtures.connect import RETURN_URL
    from tests.fixtures.emulator import running_emulator

    async with running_emulator() as emulator:
        ingress_port = free_port()
        identity = emulator.state.identity
        tenant = emulator.state.directory.add_tenant("Contoso", "contoso.test")
        redirect = f"http://127.0.0.1:{ingress_port}/oauth/outlook/callback"
        app = identity.register_app(redirect_uris=[redirect], display_name="SMVue")
        settings = benchmark_settings(
            endpoints,
            ingress_port=ingress_port,
            graph_base_url=emulator.graph_url,
            authority_host=emulator.authority_host,
            tenant="common",
            ca_bundle=emulator.ca_bundle,
            msal_instance_discovery=False,
            oauth_redirect_uri=redirect,
            public_base_url=f"http://127.0.0.1:{ingress_port}",
            oauth_return_url_hosts=[urlsplit(RETURN_URL).hostname],
            service_tokens=[SERVICE_TOKEN],
            client_id=app.client_id,
            client_secret=SecretStr(str(app.client_secret)),
        )
        yield Cloud(emulator, settings, tenant.id)


def add_mailboxes(cloud: Cloud, count: int, members: int = 3) -> list[Mailbox]:
    directory = cloud.emulator.state.directory
    made = []
    for n in range(len(cloud.mailboxes), len(cloud.mailboxes) + count):
        manager = directory.add_user(cloud.tenant_id, f"manager{n}@contoso.test", f"Manager {n}")
        team = [f"member{n}x{m}@contoso.test" for m in range(members)]
        for address in team:
            directory.add_user(cloud.tenant_id, address, address.split("@")[0])
        made.append(Mailbox(f"manager-{n}", manager.id, manager.mail, team))
    cloud.mailboxes.extend(made)
    return made


def _slot(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _event(subject: str, start: datetime, attendees: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "body": {"contentType": "text", "content": "private notes"},
        "start": _slot(start),
        "end": _slot(start + timedelta(minutes=30)),
        "attendees": [{"emailAddress": {"address": a}, "type": "required"} for a in attendees],
        **extra,
    }


async def seed_calendar(cloud: Cloud, mailbox: Mailbox, events: int, one_on_ones: int) -> None:
    """`events` event occurrences in the sync window of which `one_on_ones` are 1:1s with
    a team member: a weekly series of 10 (one occurrence moved — an exception — and one
    cancelled) when there are at least 10 1:1s, single 1:1s, and 3-person meetings."""
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    first = base - timedelta(days=40)
    async with cloud.graph(mailbox) as graph:

        async def post(body: dict[str, Any]) -> dict[str, Any]:
            answer = await graph.post("/v1.0/me/events", json=body)
            answer.raise_for_status()
            created: dict[str, Any] = answer.json()
            return created

        series_size = 10 if one_on_ones >= 10 else 0
        if series_size:
            series = await post(
                _event(
                    "weekly 1:1",
                    first,
                    [mailbox.members[0]],
                    recurrence={
                        "pattern": {
                            "type": "weekly",
                            "interval": 1,
                            "daysOfWeek": [first.strftime("%A").lower()],
                        },
                        "range": {
                            "type": "numbered",
                            "startDate": first.date().isoformat(),
                            "numberOfOccurrences": series_size,
                        },
                    },
                )
            )
            listed = await graph.get(
                f"/v1.0/me/events/{series['id']}/instances",
                params={
                    "startDateTime": (first - timedelta(days=1)).isoformat(),
                    "endDateTime": (first + timedelta(days=80)).isoformat(),
                },
            )
            occurrences = listed.json()["value"]
            moved = first + timedelta(days=7, hours=3)
            await graph.patch(
                f"/v1.0/me/events/{occurrences[1]['id']}",
                json={"start": _slot(moved), "end": _slot(moved + timedelta(minutes=30))},
            )
            await graph.post(f"/v1.0/me/events/{occurrences[2]['id']}/cancel", json={})
        in_series = series_size - 1 if series_size else 0  # the cancelled one is gone
        singles = max(0, one_on_ones - in_series)
        others = max(0, events - series_size - singles)
        for n in range(singles):
            start = base - timedelta(days=80) + timedelta(hours=13 * n + 1)
            member = mailbox.members[n % len(mailbox.members)]
            created = await post(_event(f"1:1 {n}", start, [member]))
            mailbox.singles.append(str(created["id"]))
        for n in range(others):
            start = base - timedelta(days=80) + timedelta(hours=17 * n + 5)
            await post(_event(f"group {n}", start, mailbox.members[:2] or ["x@fabrikam.test"]))
        mailbox.one_on_ones = in_series + singles


async def publish_rosters(cloud: Cloud, mailboxes: Sequence[Mailbox]) -> None:
    broker = create_broker(cloud.settings, "benchmark")
    await broker.connect()
    try:
        records = [
            RosterUpdated.build(
                key=m.user_id,
                payload=Roster(
                    manager_id=m.user_id,
                    members=[
                        TeamMember(member_id=a.split("@")[0], email=a, display_name=a)
                        for a in m.members
                    ],
                    version=1,
                    updated_at=datetime.now(UTC),
                ),
            )
            for m in mailboxes
        ]
        await KafkaPublisher(broker, cloud.settings).publish_all(records)
    finally:
        await broker.stop()


CONNECT_TIMEOUT_SECONDS = 120.0
"""Per request of a connect: a person's browser waits; hundreds signing in at once on two
cores (the benchmark's own in-process emulator among them) take longer than httpx's 5 s."""


async def connect(cloud: Cloud, mailbox: Mailbox) -> float:
    """The person connects for real: authorize, the sign-in page, the callback. Returns
    the seconds from the authorize call to the callback's redirect back to SMVue."""
    from tests.fixtures.connect import connect_user

    began = time.perf_counter()
    outcome = await connect_user(
        cloud.emulator,
        cloud.settings,
        mailbox.user_id,
        mailbox.mail,
        timeout=CONNECT_TIMEOUT_SECONDS,
    )
    if outcome.status != "connected":
        raise RuntimeError(f"{mailbox.user_id} did not connect: {outcome.code}")
    return time.perf_counter() - began


class ReadModel:
    """The projector's read model, as the benchmark's observer reads it."""

    def __init__(self, settings: Settings) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongodb_uri, tz_aware=True
        )
        self.db = self._client[settings.mongodb_database]

    async def live_counts(self, manager_ids: Sequence[str]) -> dict[str, int]:
        """Live documents per manager, in one command (an observer polling one count per
        manager sent the server hundreds of commands a second, competing with the work
        being measured)."""
        cursor = await self.db.one_on_ones.aggregate(
            [
                {"$match": {"manager_id": {"$in": list(manager_ids)}, "removed": False}},
                {"$group": {"_id": "$manager_id", "n": {"$sum": 1}}},
            ]
        )
        return {str(d["_id"]): int(d["n"]) async for d in cursor}

    async def live_count(self, manager_id: str) -> int:
        return await self.db.one_on_ones.count_documents(
            {"manager_id": manager_id, "removed": False}
        )

    async def duplicates(self, manager_id: str) -> int:
        """Live documents beyond one per Graph event."""
        seen: Counter[str] = Counter()
        async for doc in self.db.one_on_ones.find(
            {"manager_id": manager_id, "removed": False}, {"graph_event_id": 1}
        ):
            seen[str(doc.get("graph_event_id"))] += 1
        return sum(n - 1 for n in seen.values() if n > 1)

    async def subjects(self, meeting_ids: Sequence[str]) -> dict[str, str]:
        cursor = self.db.one_on_ones.find({"_id": {"$in": list(meeting_ids)}}, {"subject": 1})
        return {str(d["_id"]): str(d.get("subject")) async for d in cursor}

    async def close(self) -> None:
        await self._client.close()


def sync_env() -> dict[str, str]:
    """The syncer's knobs in a benchmark: production defaults, the 15 s timer included (it
    was 5 s here: its ~8 queries a tick were a tenth of a round trip per change at
    10 changes/s; a job backing off wakes itself, the timer is the safety net)."""
    return {}


# --- the counted service (runs in the service's process) --------------------------------------


TRACEMALLOC_ENV = "BENCH_TRACEMALLOC"  # a directory: trace the services' memory into it


def _trace_memory(path: Path) -> None:
    """Opt-in (`BENCH_TRACEMALLOC=<directory>`, slows the services down): traces Python
    allocations and, whenever the traced total reaches a new high, writes the 30 lines
    holding the most to `path` (`<directory>/<service>.memory.txt`), so what holds memory
    at the peak is known."""
    import tracemalloc

    tracemalloc.start(1)

    def keep_watching() -> None:
        high = 0
        while True:
            time.sleep(2.0)
            current, _ = tracemalloc.get_traced_memory()
            if current <= high * 1.05:
                continue
            high = current
            top = tracemalloc.take_snapshot().statistics("lineno")[:30]
            lines = [f"traced {current / 2**20:.1f} MiB; RSS {peak_rss_mib(os.getpid())} MiB"]
            lines += [f"{s.size / 2**20:8.2f} MiB {s.count:8d} {s.traceback[0]}" for s in top]
            path.write_text("\n".join(lines) + "\n")

    threading.Thread(target=keep_watching, daemon=True).start()


def _waits_path(counts_path: str) -> Path:
    return Path(counts_path).with_suffix(".waits.json")


def _serve(name: str, counts_path: str) -> None:
    from pymongo import monitoring

    counts: Counter[str] = Counter()
    waited: dict[str, float] = {}  # milliseconds from send to answer, by the same key
    started_as: dict[tuple[int, Any], str] = {}
    guard = threading.Lock()

    class Counting(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name not in _NOT_ROUND_TRIPS:
                target = event.command.get(event.command_name)  # the collection, mostly
                where = f" {target}" if isinstance(target, str) else ""
                key = f"{event.command_name}{where}"
                with guard:
                    counts[key] += 1
                    started_as[(event.request_id, event.connection_id)] = key

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            self._done(event)

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            self._done(event)

        def _done(
            self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent
        ) -> None:
            with guard:
                key = started_as.pop((event.request_id, event.connection_id), None)
                if key is not None:
                    waited[key] = waited.get(key, 0.0) + event.duration_micros / 1000

    def write() -> None:
        with guard:
            text = json.dumps(dict(counts))
            waits = json.dumps({k: round(v, 1) for k, v in waited.items()})
        for path, content in ((Path(counts_path), text), (_waits_path(counts_path), waits)):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(content)
            tmp.replace(path)

    def keep_writing() -> None:
        while True:
            time.sleep(0.2)
            write()

    monitoring.register(Counting())  # every client created from now on reports to it
    threading.Thread(target=keep_writing, daemon=True).start()
    if os.environ.get(TRACEMALLOC_ENV):
        _trace_memory(Path(os.environ[TRACEMALLOC_ENV]) / f"{name}.memory.txt")
    from shared.cli import ServiceName, run

    try:
        run(ServiceName(name))
    finally:
        write()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        _serve(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: python -m benchmarks.harness serve <service> <counts file>")
