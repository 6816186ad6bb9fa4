"""Answers to the connection commands the syncer carries out: Sync Now and disconnect.

A command that needs a job waits for it in the connection's sync state (`commands`,
written with the job's request, so a crash loses neither). When the job ends — a round
done, the connection paused or disconnected, Graph's final refusal — every command waiting
for it is answered on the outcomes topic (succeeded, or failed with a user code) and then
forgotten: publish before forget, so an answer is at least once and the ingress keeps the
first one.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from services.syncer.adapters.store import SyncerStore
from shared.contracts.commands import CommandKind
from shared.contracts.envelope import Envelope
from shared.contracts.outcomes import CommandFailed, CommandFailure, CommandResult, CommandSucceeded
from shared.contracts.user_errors import UserErrorCode, user_message
from shared.messaging.publisher import Publisher
from shared.observability.logging import get_logger

log = get_logger(__name__)

Waiting = dict[str, Any]  # {"id": command id, "kind": CommandKind value, "user_id": ...}


def waiting(command_id: str, kind: CommandKind, user_id: str) -> Waiting:
    return {"id": command_id, "kind": kind.value, "user_id": user_id}


def waiting_in(state: dict[str, Any], kinds: Collection[CommandKind]) -> list[Waiting]:
    """The commands of `kinds` that wait in `state` for a job's outcome."""
    wanted = {kind.value for kind in kinds}
    return [c for c in state.get("commands") or [] if c.get("kind") in wanted]


class CommandAnswers:
    def __init__(self, store: SyncerStore, publisher: Publisher) -> None:
        self._store = store
        self._publisher = publisher

    async def answer(
        self,
        connection_id: str,
        state: dict[str, Any],
        kinds: Collection[CommandKind],
        *,
        code: UserErrorCode | None = None,
        detail: str | None = None,
        cause: Envelope | None = None,
    ) -> None:
        """Answers the commands of `kinds` waiting in `state`: succeeded, or failed with
        `code`. Commands that arrived after `state` was read wait for the next job."""
        commands = waiting_in(state, kinds)
        if not commands:
            return
        await self._publisher.publish_all(
            [self._outcome(connection_id, c, code, detail, cause) for c in commands]
        )
        await self._store.forget_commands(connection_id, [str(c["id"]) for c in commands])
        for command in commands:
            _log_outcome(connection_id, command, code)

    async def answer_now(
        self,
        connection_id: str,
        command: Waiting,
        *,
        code: UserErrorCode | None = None,
        detail: str | None = None,
        cause: Envelope | None = None,
    ) -> None:
        """Answers one command that needs no job (e.g. Sync Now of a paused connection)."""
        await self._publisher.publish(self._outcome(connection_id, command, code, detail, cause))
        _log_outcome(connection_id, command, code)

    @staticmethod
    def _outcome(
        connection_id: str,
        command: Waiting,
        code: UserErrorCode | None,
        detail: str | None,
        cause: Envelope | None,
    ) -> Envelope:
        now = datetime.now(UTC)
        kind = CommandKind(command["kind"])
        if code is None:
            return CommandSucceeded.build(
                key=connection_id,
                payload=CommandResult(
                    command_id=str(command["id"]),
                    kind=kind,
                    manager_id=str(command.get("user_id", "")),
                    completed_at=now,
                ),
                cause=cause,
            )
        return CommandFailed.build(
            key=connection_id,
            payload=CommandFailure(
                command_id=str(command["id"]),
                kind=kind,
                manager_id=str(command.get("user_id", "")),
                code=code,
                message=user_message(code),
                detail=detail,
                completed_at=now,
            ),
            cause=cause,
        )


def _log_outcome(connection_id: str, command: Waiting, code: UserErrorCode | None) -> None:
    log.info(
        "command succeeded" if code is None else "command failed",
        command_id=command["id"],
        kind=command["kind"],
        connection_id=connection_id,
        code=None if code is None else code.value,
    )
