"""The errors a person can see, with the help page's own words.

Codes are stable (the SMVue backend switches on them); messages are what the help page
promises the user will read.
"""

from __future__ import annotations

from enum import StrEnum


class UserErrorCode(StrEnum):
    AUTHORIZATION_FAILED = "authorization_failed"
    INSUFFICIENT_PERMISSIONS = "insufficient_permissions"
    ADMIN_APPROVAL_REQUIRED = "admin_approval_required"
    CONDITIONAL_ACCESS_BLOCKED = "conditional_access_blocked"
    REAUTHORIZATION_REQUIRED = "reauthorization_required"
    CALENDAR_NOT_CONNECTED = "calendar_not_connected"
    TEAMS_LICENCE_REQUIRED = "teams_licence_required"
    TEAMS_LINK_UNAVAILABLE = "teams_link_unavailable"  # a warning: the meeting was made
    THROTTLED = "throttled"
    EVENT_NOT_FOUND = "event_not_found"
    NOT_MANAGED_BY_SMVUE = "not_managed_by_smvue"
    CONFLICT = "conflict"
    GRAPH_UNAVAILABLE = "graph_unavailable"
    INVALID_COMMAND = "invalid_command"


USER_MESSAGES: dict[UserErrorCode, str] = {
    UserErrorCode.AUTHORIZATION_FAILED: "Unable to authorize Outlook Calendar",
    UserErrorCode.INSUFFICIENT_PERMISSIONS: "Insufficient permissions to access Outlook Calendar",
    UserErrorCode.ADMIN_APPROVAL_REQUIRED: "Need admin approval",
    UserErrorCode.CONDITIONAL_ACCESS_BLOCKED: "Access blocked by Conditional Access",
    UserErrorCode.REAUTHORIZATION_REQUIRED: (
        "Outlook Calendar needs to be reconnected: try reconnecting your calendar"
    ),
    UserErrorCode.CALENDAR_NOT_CONNECTED: "Outlook Calendar is not connected",
    UserErrorCode.TEAMS_LICENCE_REQUIRED: (
        "Microsoft Teams link could not be added: your Microsoft 365 license must include Teams"
    ),
    UserErrorCode.TEAMS_LINK_UNAVAILABLE: (
        "The meeting was created without a Microsoft Teams link: ensure your Microsoft 365 "
        "license includes Teams"
    ),
    UserErrorCode.THROTTLED: (
        "Microsoft 365 is busy right now and asked SMVue to slow down; please try again later"
    ),
    UserErrorCode.EVENT_NOT_FOUND: "The meeting no longer exists on your Outlook Calendar",
    UserErrorCode.NOT_MANAGED_BY_SMVUE: (
        "SMVue only updates or cancels the events it created on your Outlook Calendar"
    ),
    UserErrorCode.CONFLICT: "The meeting was changed in Outlook at the same time; please retry",
    UserErrorCode.GRAPH_UNAVAILABLE: "Outlook Calendar is unavailable right now; please retry",
    UserErrorCode.INVALID_COMMAND: "The request was not valid",
}


def user_message(code: UserErrorCode) -> str:
    return USER_MESSAGES[code]
