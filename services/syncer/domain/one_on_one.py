"""What counts as a 1:1 (the help page's rules), decided from allowed fields only.

A 1:1 is an event on the primary calendar with exactly two people: the connected user and
one other human (organizer or attendee; rooms and resources don't count) whose address
matches — case-insensitively — a member of this manager's team; not private; not all-day.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from shared.graph.event import GraphEvent


class NotOneOnOne(StrEnum):
    PRIVATE = "private"
    ALL_DAY = "all_day"
    NOT_TWO_PEOPLE = "not_two_people"
    NOT_A_TEAM_MEMBER = "not_a_team_member"
    NO_TIMES = "no_times"
    NOT_AN_OCCURRENCE = "not_an_occurrence"


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
    event: GraphEvent, owner_addresses: Collection[str], team: Mapping[str, TeamMemberRef]
) -> OneOnOne | NotOneOnOne:
    """`owner_addresses`: the connected user's addresses (mail, UPN, aliases); `team` maps
    lower-cased member e-mail → member."""
    if event.type == "seriesMaster":
        return NotOneOnOne.NOT_AN_OCCURRENCE  # calendarView gives occurrences, not masters
    if event.sensitivity.lower() == "private":
        return NotOneOnOne.PRIVATE
    if event.is_all_day:
        return NotOneOnOne.ALL_DAY
    if event.start is None or event.end is None:
        return NotOneOnOne.NO_TIMES
    people = people_on(event)
    owners = {address.lower() for address in owner_addresses}
    others = [address for address in people if address not in owners]
    if len(others) != 1 or len(people) == len(others):
        return NotOneOnOne.NOT_TWO_PEOPLE  # exactly the user and one other human
    member = team.get(others[0])
    if member is None:
        return NotOneOnOne.NOT_A_TEAM_MEMBER
    return OneOnOne(member, others[0], people[others[0]])
