"""Response models of the query API (FastAPI documents them in the OpenAPI schema).

They are the read model's public shape, separate from the Kafka contracts and from the
MongoDB documents, so either can change without breaking the SMVue backend.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts.connections import (
    ConnectedAccount,
    ConnectionError_,
    ConnectionState,
    ImportProgress,
)
from shared.contracts.meetings import MeetingSource
from shared.contracts.user_errors import UserErrorCode


class ApiModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class PersonView(ApiModel):
    email: str
    display_name: str | None = None


class OneOnOneView(ApiModel):
    meeting_id: str
    member: PersonView
    member_id: str | None = Field(description="SMVue id of the team member, when known.")
    subject: str
    start: datetime = Field(description="UTC.")
    end: datetime = Field(description="UTC.")
    original_time_zone: str | None
    location: str | None
    join_url: str | None
    event_type: Literal["singleInstance", "occurrence", "exception", "seriesMaster"]
    series_master_id: str | None
    is_cancelled: bool = Field(
        description="Cancelled or deleted (in Outlook, or from SMVue); still listed, flagged."
    )
    source: MeetingSource = Field(
        description="`smvue`: scheduled from SMVue (also after changes in Outlook); "
        "`outlook`: found in the calendar."
    )
    created_in_smvue: bool = Field(description="Scheduled from SMVue (sticky once known).")
    smvue_command_id: str | None
    version: int


class OneOnOneList(ApiModel):
    manager_id: str
    range_from: datetime = Field(alias="from", description="Inclusive (UTC).")
    range_to: datetime = Field(alias="to", description="Exclusive (UTC).")
    one_on_ones: list[OneOnOneView] = Field(description="Meetings overlapping the range.")


class CadenceView(ApiModel):
    member_email: str = Field(description="Lower case.")
    member_name: str | None
    member_id: str | None
    last_held: datetime | None = Field(description="Start of the latest meeting that ended.")
    next_scheduled: datetime | None = Field(description="Start of the next meeting.")
    held_last_90_days: int
    median_interval_days: float | None = Field(
        description="Median gap between meetings held in the last 90 days; null with < 2."
    )
    overdue_horizon_days: float = Field(
        description="max(1.5 x median interval, 14), or 14 without a median."
    )
    overdue: bool = Field(
        description="Nothing held within the horizon and nothing coming within it."
    )


class CadenceList(ApiModel):
    manager_id: str
    computed_at: datetime = Field(description="The `now` the cadence is relative to.")
    members: list[CadenceView]


class CardNotice(ApiModel):
    code: UserErrorCode
    message: str = Field(description="The help page's words.")
    hint: str | None = Field(description="What the person can do (the help page's solution).")


class ConnectionView(ApiModel):
    connection_id: str
    user_id: str
    state: ConnectionState
    account: ConnectedAccount | None
    granted_scopes: list[str]
    can_write: bool
    connected_at: datetime | None
    last_sync_at: datetime | None
    last_error: ConnectionError_ | None
    last_connect_error: ConnectionError_ | None = Field(
        description="The last connect attempt's failure, until a connect succeeds."
    )
    initial_import: ImportProgress | None = Field(
        description="The initial import: importing, then ready with counts and duration."
    )
    syncing: bool = Field(description="Calendar changes reach SMVue.")
    can_schedule: bool = Field(description="SMVue can create/update/cancel its meetings.")
    notice: CardNotice | None = Field(description="What the card tells the person, if anything.")
    action: Literal["connect", "reconnect"] | None = Field(
        description="The button the card offers."
    )
    version: int


class Problem(ApiModel):
    detail: str
