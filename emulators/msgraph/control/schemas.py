"""Request bodies of the control API (JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PolicyIn(BaseModel):
    admin_consent_required: bool = False
    conditional_access_block: bool = False
    grantable_scopes: list[str] | None = None


class TenantIn(BaseModel):
    name: str
    domain: str
    id: str | None = None
    policy: PolicyIn = Field(default_factory=PolicyIn)


class UserIn(BaseModel):
    tenant: str  # tenant id, domain, or "consumers" for a personal account
    email: str
    display_name: str
    teams_licence: bool = True
    time_zone: str = "UTC"
    id: str | None = None


class AppIn(BaseModel):
    redirect_uris: list[str] = Field(default_factory=list)
    display_name: str = "SMVue"
    client_id: str | None = None
    client_secret: str | None = None
    api_permissions: list[str] | None = None


class TokenIn(BaseModel):
    user: str  # id, UPN or mail
    scopes: list[str] = Field(default_factory=lambda: ["Calendars.ReadWrite"])
    client_id: str | None = None


class RevokeIn(BaseModel):
    client_id: str | None = None


class FaultIn(BaseModel):
    path_regex: str
    method: str = "*"
    status: int | None = 503
    retry_after: int | None = None
    latency_ms: int = 0
    answer_delay_ms: int = 0
    mailbox: str | None = None
    count: int | None = 1
    code: str | None = None
    message: str | None = None


class ControlsIn(BaseModel):
    paused: bool | None = None
    delay_seconds: float | None = None
    duplicate_next: int | None = None
    reorder_next: int | None = None
    drop_next: int | None = None


class AdvanceIn(BaseModel):
    seconds: float = 0
    minutes: float = 0
    hours: float = 0
    days: float = 0


class LifecycleIn(BaseModel):
    lifecycleEvent: Literal["reauthorizationRequired", "subscriptionRemoved", "missed"]


class CalendarSettingsIn(BaseModel):
    unlicensed_teams: Literal["error", "silent"] | None = None
    delta_token_max_age_seconds: float | None = Field(default=None, gt=0)
    empty_pages: int | None = Field(default=None, ge=0)
