"""`smvue-sync offsets`: lag per partition of a real group; a reset is refused while the
group has live members, and once it is idle the group re-reads from where it was set."""

from __future__ import annotations

import pytest

from shared.contracts.topics import AUDIT, CONNECTIONS
from shared.settings import Settings
from tests.fixtures.services import build, running
from tests.operators.conftest import cli, eventually, publish, read_topic
from tests.operators.test_dlq import card

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


async def test_offsets_show_lag_and_reset_is_refused_with_live_members(settings: Settings) -> None:
    group = f"{settings.group_id('projector')}.{CONNECTIONS.name}"
    await publish(settings, card("ann"), card("bob"), card("cy"))

    async def shown() -> dict[str, object]:
        ran = await cli(settings, "offsets", "show", group, "--json")
        return dict(ran.json()) if ran.exit_code == 0 else {}

    async with running(build("projector", settings)):
        view = await eventually(shown, lambda v: v.get("total_lag") == 0 and bool(v["members"]))
        partitions = view["partitions"]
        assert isinstance(partitions, list)
        assert sum(p["committed"] for p in partitions) == 3
        assert {p["topic"] for p in partitions} == {settings.topic(CONNECTIONS)}

        refused = await cli(settings, "offsets", "reset", group, "--to-earliest")
        assert refused.exit_code == 4
        assert "live member" in refused.stderr
        assert (await shown())["total_lag"] == 0  # nothing was committed

    reset = await cli(settings, "offsets", "reset", group, "--to-earliest", "--json")
    assert reset.exit_code == 0, reset.stderr
    assert sorted(r["offset"] for r in reset.json()) == [0] * len(partitions)
    after = await shown()
    assert after["total_lag"] == 3 and after["members"] == 0
    audits = [
        r["payload"]
        for r in await read_topic(settings, settings.topic(AUDIT))
        if r["payload"]["operation"] == "offsets.reset"
    ]
    assert [a["target_ids"] for a in audits] == [[group]]
    assert (await cli(settings, "offsets", "show", "no-such-group")).exit_code == 3
    assert (await cli(settings, "offsets", "reset", group)).exit_code == 2
