"""A manager's team, from the SMVue backend: who counts as "a team member" for 1:1s."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from shared.contracts.envelope import Contract, EmailAddress, Envelope


class TeamMember(Contract):
    member_id: str = Field(min_length=1, max_length=128)
    email: EmailAddress
    display_name: str = Field(min_length=1, max_length=256)


class Roster(Contract):
    manager_id: str = Field(min_length=1, max_length=128)
    members: list[TeamMember] = Field(max_length=1000)
    version: int = Field(ge=0, description="Grows with every roster change from the backend.")
    updated_at: AwareDatetime


class RosterUpdated(Envelope):
    """The manager's whole team as it is now (compacted topic, key = manager id)."""

    type: Literal["roster.updated"] = "roster.updated"
    payload: Roster
