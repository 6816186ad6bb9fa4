"""The writer's handlers: one command in, at most one Outlook write, one outcome out.

For each command: skip it if it already finished (redelivery); refuse it before any Graph
call when the calendar can't be written or the event is not SMVue's; else write, record,
publish the meeting event, audit, and publish the outcome — then mark it finished. A crash
anywhere before that mark replays the command: the create repeats its transactionId (Graph
returns the event already made), reschedule re-applies the same absolute times, and cancel
records its intent before Graph's cancel, so its retry completes (publish, audit, mark)
even though the event has left Outlook, and a retry after the mark only says the outcome
again (docs/conventions.md, "Effect order").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from services.writer.adapters.outlook import Answer, OutlookCalendar
from services.writer.adapters.store import Ownership, WriterStore
from services.writer.domain.failures import Failure, Refused, failure_for, refused_over_teams
from services.writer.domain.outlook_event import (
    CurrentTimes,
    NothingToChange,
    is_smvue_managed,
    new_event,
    reschedule_patch,
)
from shared.audit import AuditLog
from shared.connections.events import ConnectionEvents
from shared.connections.registry import ConnectionRegistry
from shared.contracts.audit import AuditOperation, AuditOutcome
from shared.contracts.commands import (
    CancelMeeting,
    CancelMeetingRequest,
    CommandKind,
    RescheduleMeeting,
    ScheduleMeeting,
)
from shared.contracts.connections import ConnectionState, connection_id_for
from shared.contracts.meeting_versions import next_version
from shared.contracts.meetings import (
    MeetingRemoval,
    MeetingRemoved,
    MeetingSource,
    MeetingUpserted,
    Person,
    RemovalReason,
    meeting_id_for,
    writer_record_key,
)
from shared.contracts.outcomes import (
    CommandFailed,
    CommandFailure,
    CommandResult,
    CommandSucceeded,
    CommandWarning,
)
from shared.contracts.user_errors import UserErrorCode, user_message
from shared.graph.errors import GraphError, GraphForbidden, GraphNotFound, GraphPreconditionFailed
from shared.graph.event import GraphEvent
from shared.graph.meeting import meeting_from_event
from shared.messaging.failures import Retryable
from shared.messaging.failures import retry_after as exc_retry_after
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)

MeetingCommand = ScheduleMeeting | RescheduleMeeting | CancelMeeting
MAX_CONFLICT_RETRIES = 3
TRANSIENT_PATIENCE = timedelta(minutes=5)
"""How long a command keeps being retried while Graph throttles (429) or is unavailable
(5xx, network) after the Graph client's own retries ran out: the record is retried by the
consumer (its lane only, Retry-After honoured); past this age since the command was
issued, or when Graph's Retry-After reaches past it, it ends as `throttled` /
`graph_unavailable`, so the outcome comes in bounded time."""
_PATIENT_CODES = (UserErrorCode.THROTTLED, UserErrorCode.GRAPH_UNAVAILABLE)
_KIND: dict[type[MeetingCommand], CommandKind] = {
    ScheduleMeeting: CommandKind.SCHEDULE,
    RescheduleMeeting: CommandKind.RESCHEDULE,
    CancelMeeting: CommandKind.CANCEL,
}
_OPERATION: dict[CommandKind, AuditOperation] = {
    CommandKind.SCHEDULE: AuditOperation.EVENT_CREATE,
    CommandKind.RESCHEDULE: AuditOperation.EVENT_UPDATE,
    CommandKind.CANCEL: AuditOperation.EVENT_CANCEL,
}


class WriterHandlers:
    def __init__(
        self,
        *,
        store: WriterStore,
        outlook: OutlookCalendar,
        registry: ConnectionRegistry,
        publisher: Publisher,
        audit: AuditLog,
        events: ConnectionEvents,
        transient_patience: timedelta = TRANSIENT_PATIENCE,
    ) -> None:
        self._patience = transient_patience
        self._store = store
        self._outlook = outlook
        self._registry = registry
        self._events = events
        self._publisher = publisher
        self._audit = audit

    async def on_command(self, command: MeetingCommand) -> None:
        request = command.payload
        kind = _KIND[type(command)]
        try:
            if await self._store.finished(request.command_id) is not None:
                log.info("command already finished", command_id=request.command_id)
                return
            await self._execute(command, kind)
        except (PyMongoError, KafkaError) as exc:
            raise Retryable(f"{type(exc).__name__} while handling the command") from exc

    async def _execute(self, command: MeetingCommand, kind: CommandKind) -> None:
        request = command.payload
        connection_id = connection_id_for(request.manager_id)
        meeting_id = None if isinstance(command, ScheduleMeeting) else command.payload.meeting_id
        wants_teams = isinstance(command, ScheduleMeeting) and command.payload.add_teams_link
        try:
            await self._check_writable(connection_id)
            if isinstance(command, ScheduleMeeting):
                result = await self._schedule(command, connection_id)
            elif isinstance(command, RescheduleMeeting):
                result = await self._reschedule(command, connection_id)
            else:
                result = await self._cancel(command, connection_id)
        except Exception as exc:
            failure = failure_for(exc, wants_teams=wants_teams)
            if failure is None:
                raise
            if failure.code in _PATIENT_CODES and not self._out_of_patience(command, exc):
                raise Retryable(
                    f"Graph {failure.code.value}; retried", exc_retry_after(exc)
                ) from exc
            if isinstance(command, CancelMeeting) and meeting_id is not None:
                await self._store.abandon_cancel(meeting_id, command.payload.command_id)
            if isinstance(exc, GraphNotFound) and meeting_id is not None:
                await self._store.mark(meeting_id, "gone")  # deleted in Outlook meanwhile
            await self._tell_the_card(exc, failure, connection_id, command)
            await self._fail(
                command, kind, connection_id, failure.meeting_id or meeting_id, failure
            )
            return
        outcome = CommandSucceeded.build(key=connection_id, payload=result, cause=command)
        await self._publisher.publish(outcome)
        await self._store.finish(request.command_id, kind, outcome.payload.model_dump(mode="json"))
        log.info(
            "command succeeded",
            command_id=request.command_id,
            kind=kind.value,
            connection_id=connection_id,
            warnings=[w.code.value for w in result.warnings] or None,
        )

    # ------------------------------------------------------------------ the three commands
    async def _schedule(self, command: ScheduleMeeting, connection_id: str) -> CommandResult:
        request = command.payload
        warnings: list[CommandWarning] = []
        teams = request.add_teams_link
        if teams and not await self._outlook.allows_teams(connection_id):
            # The help page: the meeting is made, without the link (as Graph itself would).
            teams = False
            warnings.append(
                _teams_warning(
                    "the calendar's allowedOnlineMeetingProviders has no teamsForBusiness"
                )
            )
        try:
            answer = await self._outlook.create(connection_id, new_event(request, teams=teams))
        except GraphError as exc:
            if not (teams and refused_over_teams(exc)):
                raise
            # The licence went between the check and the create, and Graph refused rather
            # than downgrading: nothing was made, so make it without the link.
            teams = False
            warnings.append(_teams_warning(f"Graph refused the Teams link: {exc.message}"[:1000]))
            answer = await self._outlook.create(connection_id, new_event(request, teams=False))
        event = _parse(answer)
        meeting_id = meeting_id_for(connection_id, event.id)
        await self._store.own(
            Ownership(
                meeting_id=meeting_id,
                connection_id=connection_id,
                manager_id=request.manager_id,
                graph_event_id=event.id,
                ical_uid=event.ical_uid,
                command_id=request.command_id,
                member_email=request.member_email.lower(),
                member_name=request.member_name,
                time_zone=request.time_zone,
                state="active",
            )
        )
        member = Person(email=request.member_email.lower(), display_name=request.member_name)
        await self._publish_meeting(event, connection_id, request.manager_id, member, command)
        join_url = event.online_meeting.join_url if event.online_meeting else None
        if teams and not join_url:
            # Graph made the event but quietly without Teams: it stays (invitations are
            # out); the person is told the link could not be added.
            warnings.append(_teams_warning("Graph created the meeting without a Teams link"))
        await self._audit_write(command, connection_id, answer, [event.id, meeting_id])
        return CommandResult(
            command_id=request.command_id,
            kind=CommandKind.SCHEDULE,
            manager_id=request.manager_id,
            meeting_id=meeting_id,
            graph_event_id=event.id,
            ical_uid=event.ical_uid,
            join_url=join_url,
            warnings=warnings,
            completed_at=datetime.now(UTC),
        )

    async def _reschedule(self, command: RescheduleMeeting, connection_id: str) -> CommandResult:
        request = command.payload
        owned = await self._owned(command, connection_id)
        for attempt in range(1, MAX_CONFLICT_RETRIES + 1):
            current = await self._read_ours(command, connection_id, owned)
            event = _parse(current)
            if event.start is None or event.end is None:
                raise Refused(UserErrorCode.INVALID_COMMAND, "the event has no start or end")
            times = CurrentTimes(
                event.start.utc(), event.end.utc(), owned.time_zone, all_day=event.is_all_day
            )
            try:
                _, _, patch = reschedule_patch(times, request)
            except NothingToChange as exc:
                raise Refused(UserErrorCode.INVALID_COMMAND, str(exc)) from exc
            etag = str(current.body.get("@odata.etag") or f'W/"{event.change_key}"')
            try:
                answer = await self._outlook.update(
                    connection_id, owned.graph_event_id, patch, etag
                )
            except GraphPreconditionFailed:
                log.info("event changed meanwhile; re-reading", attempt=attempt)
                continue
            updated = _parse(answer)
            member = Person(email=owned.member_email, display_name=owned.member_name)
            await self._publish_meeting(
                updated, connection_id, owned.manager_id, member, command, owned.command_id
            )
            await self._audit_write(
                command, connection_id, answer, [owned.graph_event_id, owned.meeting_id]
            )
            return CommandResult(
                command_id=request.command_id,
                kind=CommandKind.RESCHEDULE,
                manager_id=request.manager_id,
                meeting_id=owned.meeting_id,
                graph_event_id=updated.id,
                ical_uid=updated.ical_uid,
                join_url=updated.online_meeting.join_url if updated.online_meeting else None,
                completed_at=datetime.now(UTC),
            )
        raise Refused(
            UserErrorCode.CONFLICT,
            f"the event kept changing in Outlook ({MAX_CONFLICT_RETRIES} If-Match conflicts)",
        )

    async def _cancel(self, command: CancelMeeting, connection_id: str) -> CommandResult:
        """Intent, Graph, publish, audit, then mark: the intent (`cancelling`, by this
        command) is written before Graph's cancel, so a retry after a failure anywhere later
        knows that the event missing from Outlook is its own doing and completes. So does a
        cancel whose event was read just before and whose cancel then met 404 (the Graph
        client retried a cancel Graph had applied: a held answer)."""
        request = command.payload
        owned = await self._store.owned(request.meeting_id)
        if owned is None or owned.connection_id != connection_id:
            raise Refused(
                UserErrorCode.NOT_MANAGED_BY_SMVUE, "no SMVue-created event with this meeting id"
            )
        by_this = owned.cancel_command_id == request.command_id
        if owned.state == "cancelled" and by_this:
            # Everything up to the outcome was done (the mark comes last): only the outcome
            # was lost (its publish failed, or the writer died before it). Say it again.
            return _cancel_result(request, owned)
        resumed = owned.state == "cancelling" and by_this
        if not resumed:
            if owned.state != "active":
                raise Refused(UserErrorCode.EVENT_NOT_FOUND, f"the event is {owned.state}")
            if not await self._store.begin_cancel(owned.meeting_id, request.command_id):
                raise Refused(UserErrorCode.EVENT_NOT_FOUND, "the event changed state meanwhile")
        request_id: str | None = None
        before: GraphEvent | None = None
        try:
            before = _parse(await self._read_ours(command, connection_id, owned))
            answer = await self._outlook.cancel(
                connection_id, owned.graph_event_id, request.message
            )
            request_id = answer.request_id
        except GraphNotFound:
            # Ours when resumed, or when the event was there just before the cancel: the
            # client retried a cancel Graph had applied (its answer held past the timeout).
            # Only an event already gone before any cancel of ours fails honestly.
            if not resumed and before is None:
                raise
            log.info(
                "cancel completed: Outlook no longer has the event",
                command_id=request.command_id,
            )
        if before is not None and before.start is not None and before.end is not None:
            # Listed as cancelled (the API's `is_cancelled`), kept for cadence history.
            member = Person(email=owned.member_email, display_name=owned.member_name)
            await self._publish_meeting(
                before,
                connection_id,
                owned.manager_id,
                member,
                command,
                owned.command_id,
                cancelled=True,
            )
        else:
            # Resumed, and Outlook no longer has it: only its removal can be said here (the
            # syncer, which kept the meeting, publishes it as cancelled when it sees it go).
            removal = MeetingRemoval(
                meeting_id=owned.meeting_id,
                connection_id=connection_id,
                manager_id=owned.manager_id,
                graph_event_id=owned.graph_event_id,
                reason=RemovalReason.DELETED,
                created_in_smvue=True,
                smvue_command_id=owned.command_id,
                version=next_version(datetime.now(UTC)),
            )
            await self._publisher.publish(
                MeetingRemoved.build(
                    key=writer_record_key(owned.meeting_id), payload=removal, cause=command
                )
            )
        await self._audit_write(
            command, connection_id, Answer({}, request_id), [owned.graph_event_id, owned.meeting_id]
        )
        await self._store.mark(owned.meeting_id, "cancelled")
        return _cancel_result(request, owned)

    def _out_of_patience(self, command: MeetingCommand, exc: Exception) -> bool:
        """Past its patience, or Graph asks to wait beyond it (a Retry-After of minutes:
        fail now, with the words for it, rather than hold the mailbox's lane that long)."""
        waited = datetime.now(UTC) - command.occurred_at
        asked = timedelta(seconds=exc_retry_after(exc) or 0)
        return waited + asked >= self._patience

    async def _tell_the_card(
        self, exc: Exception, failure: Failure, connection_id: str, command: MeetingCommand
    ) -> None:
        """Outlook just said the connection can't do what the card claims: the card says so
        at once (not at the syncer's next round)."""
        if isinstance(exc, Refused):
            return  # decided from the registry itself: nothing new
        snapshot = None
        if failure.code is UserErrorCode.REAUTHORIZATION_REQUIRED:
            snapshot = await self._registry.reauthorization_required(connection_id)
        elif isinstance(exc, GraphForbidden):
            snapshot = await self._registry.write_refused(connection_id)
        if snapshot is not None:
            await self._events.publish("status_changed", snapshot, cause=command)

    # ------------------------------------------------------------------ guards
    async def _check_writable(self, connection_id: str) -> None:
        connection = await self._registry.get(connection_id)
        if connection is None or connection.state in (
            ConnectionState.DISCONNECTED,
            ConnectionState.FAILED,
        ):
            raise Refused(UserErrorCode.CALENDAR_NOT_CONNECTED, "no connected calendar")
        if connection.state is ConnectionState.REAUTHORIZATION_REQUIRED:
            raise Refused(
                UserErrorCode.REAUTHORIZATION_REQUIRED, "the connection needs reauthorization"
            )
        if not connection.can_write:
            raise Refused(UserErrorCode.INSUFFICIENT_PERMISSIONS, "Calendars.ReadWrite not granted")

    async def _owned(
        self, command: RescheduleMeeting | CancelMeeting, connection_id: str
    ) -> Ownership:
        """Only events SMVue created for this manager: anything else is refused before any
        Graph call."""
        owned = await self._store.owned(command.payload.meeting_id)
        if owned is None or owned.connection_id != connection_id:
            raise Refused(
                UserErrorCode.NOT_MANAGED_BY_SMVUE, "no SMVue-created event with this meeting id"
            )
        if owned.state != "active":
            raise Refused(UserErrorCode.EVENT_NOT_FOUND, f"the event is {owned.state}")
        return owned

    async def _read_ours(
        self, command: RescheduleMeeting | CancelMeeting, connection_id: str, owned: Ownership
    ) -> Answer:
        """Reads the event and checks SMVue's tag is still on it (belt and braces)."""
        answer = await self._outlook.read(connection_id, owned.graph_event_id)
        if not is_smvue_managed(answer.body):
            raise Refused(UserErrorCode.NOT_MANAGED_BY_SMVUE, "the event lacks SMVue's tag")
        return answer

    # ------------------------------------------------------------------ outputs
    async def _publish_meeting(
        self,
        event: GraphEvent,
        connection_id: str,
        manager_id: str,
        member: Person,
        command: MeetingCommand,
        created_by: str | None = None,
        *,
        cancelled: bool = False,
    ) -> None:
        meeting = meeting_from_event(
            event,
            connection_id=connection_id,
            manager_id=manager_id,
            member=member,
            member_id=None,
            version=next_version(datetime.now(UTC), event.last_modified),
            source=MeetingSource.SMVUE,
            smvue_command_id=created_by or command.payload.command_id,
        )
        if cancelled:
            meeting = meeting.model_copy(update={"is_cancelled": True})
        await self._publisher.publish(
            MeetingUpserted.build(
                key=writer_record_key(meeting.meeting_id), payload=meeting, cause=command
            )
        )

    async def _audit_write(
        self, command: MeetingCommand, connection_id: str, answer: Answer, targets: list[str]
    ) -> None:
        await self._audit.record(
            _OPERATION[_KIND[type(command)]],
            AuditOutcome.SUCCEEDED,
            connection_id=connection_id,
            user_id=command.payload.manager_id,
            target_ids=targets,
            command_id=command.payload.command_id,
            graph_request_id=answer.request_id,
            cause=command,
        )

    async def _fail(
        self,
        command: MeetingCommand,
        kind: CommandKind,
        connection_id: str,
        meeting_id: str | None,
        failure: Failure,
    ) -> None:
        refused = failure.http_status is None
        await self._audit.record(
            AuditOperation.WRITE_REFUSED if refused else _OPERATION[kind],
            AuditOutcome.REFUSED if refused else AuditOutcome.FAILED,
            connection_id=connection_id,
            user_id=command.payload.manager_id,
            target_ids=[meeting_id] if meeting_id else [],
            command_id=command.payload.command_id,
            http_status=failure.http_status,
            graph_request_id=failure.graph_request_id,
            detail=f"{failure.code}: {failure.detail}" if failure.detail else failure.code,
            cause=command,
        )
        payload = CommandFailure(
            command_id=command.payload.command_id,
            kind=kind,
            manager_id=command.payload.manager_id,
            meeting_id=meeting_id,
            code=failure.code,
            message=user_message(failure.code),
            detail=failure.detail,
            completed_at=datetime.now(UTC),
        )
        outcome = CommandFailed.build(key=connection_id, payload=payload, cause=command)
        await self._publisher.publish(outcome)
        await self._store.finish(command.payload.command_id, kind, payload.model_dump(mode="json"))
        log.info("command failed", command_id=command.payload.command_id, code=failure.code.value)


def _cancel_result(request: CancelMeetingRequest, owned: Ownership) -> CommandResult:
    return CommandResult(
        command_id=request.command_id,
        kind=CommandKind.CANCEL,
        manager_id=request.manager_id,
        meeting_id=owned.meeting_id,
        graph_event_id=owned.graph_event_id,
        ical_uid=owned.ical_uid,
        completed_at=datetime.now(UTC),
    )


def _teams_warning(detail: str) -> CommandWarning:
    code = UserErrorCode.TEAMS_LINK_UNAVAILABLE
    return CommandWarning(code=code, message=user_message(code), detail=detail)


def _parse(answer: Answer) -> GraphEvent:
    try:
        return GraphEvent.model_validate(answer.body)
    except ValidationError as exc:
        raise Refused(
            UserErrorCode.GRAPH_UNAVAILABLE, "Graph answered an unreadable event"
        ) from exc
