"""What counts as a 1:1 (the help page's rules), decided from allowed fields only.

A 1:1 is an event on the primary calendar with exactly two people: the connected user and
one other human (organizer or attendee; rooms and resources don't count) whose address
matches — case-insensitively — a member of this manager's team; not private; not all-day.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.syncer.domain.graph_event import GraphEvent


class NotOneOnOne(StrEnum):
    PRIVATE = "private"
    ALL_DAY = "all_day"
    NOT_TWO_PEOPLE = "not_two_people"
    NOT_A_TEAM_MEMBER = "not_a_team_member"
    NO_TIMES = "no_times"


@dataclass(frozen=True)
class TeamMemberRef:
    member_id: str
    email: str
    display_name: str


@dataclass(frozen=True)
class OneOnOne:
    member: TeamMemberRef
    member_address: str  # as it appears on the event
    member_name: str | None


def people_on(event: GraphEvent) -> dict[str, str | None]:
    """Humans on the event, by lower-cased address → display name (resources excluded)."""
    people: dict[str, str | None] = {}
    if event.organizer and event.organizer.email_address and event.organizer.email_address.address:
        people[event.organizer.email_address.address.lower()] = event.organizer.email_address.name
    for attendee in event.attendees:
        if (attendee.type or "").lower() == "resource":
            continue
        address = attendee.email_address.address if attendee.email_address else None
        if address:
            people.setdefault(
                address.lower(), attendee.email_address.name if attendee.email_address else None
            )
    return people


def classify(
    event: GraphEvent, owner_address: str, team: dict[str, TeamMemberRef]
) -> OneOnOne | NotOneOnOne:
    """`team` maps lower-cased member e-mail → member."""
    if event.sensitivity.lower() == "private":
        return NotOneOnOne.PRIVATE
    if event.is_all_day:
        return NotOneOnOne.ALL_DAY
    if event.start is None or event.end is None:
        return NotOneOnOne.NO_TIMES
    people = people_on(event)
    owner = owner_address.lower()
    others = [address for address in people if address != owner]
    if owner not in people or len(people) != 2 or len(others) != 1:
        return NotOneOnOne.NOT_TWO_PEOPLE
    member = team.get(others[0])
    if member is None:
        return NotOneOnOne.NOT_A_TEAM_MEMBER
    return OneOnOne(member, others[0], people[others[0]])
