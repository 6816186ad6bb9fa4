"""structlog JSON logging with correlation ids and a redaction processor.

Redaction is by construction, not by care: any key that names a secret is replaced, and
bearer tokens or JWT-looking strings inside any value are masked, whoever logged them.

A `code` field is redacted by its value, not by its name: the user-facing failure codes
(`reauthorization_required`), OAuth error codes (`invalid_grant`), Graph's
(`ErrorItemNotFound`), AADSTS numbers and HTTP statuses are what an operator needs and
are kept; anything else under `code` — an OAuth authorization code is a long opaque string
with dots and dashes — is redacted, and so is every `code` beside an OAuth `state` (the
callback's query). Issue 9: every failure code used to read `code=[redacted]`.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

REDACTED = "[redacted]"

_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|client_?state|authorization|cookie|verifier|"
    r"auth_?code|assertion|api_?key|private_?key|token_cache|^body$|^body_preview$|"
    r"bodypreview)",
    re.IGNORECASE,
)
# What a `code` that names a failure looks like (see the module docstring).
_FAILURE_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}|[A-Z][A-Za-z0-9]{0,47}|AADSTS\d{4,9}|\d{1,5}")
_OAUTH_CONTEXT_KEYS = ("state", "session_state")
_SECRET_VALUE = re.compile(
    r"(?i:bearer)\s+[A-Za-z0-9\-._~+/]+=*"  # Authorization header values
    r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"  # JWTs
    r"|(?<![\w-])(code|client_secret|refresh_token|access_token|id_token|validationToken|"
    r"code_verifier|clientState)=[^&\s\"']+"
)


def redact_text(text: str) -> str:
    """`text` with bearer tokens, JWTs and secret query parameters masked (what the log
    processor does to every value; dead-letter headers use it too)."""
    return _SECRET_VALUE.sub(REDACTED, text)


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return _SECRET_VALUE.sub(REDACTED, value)
    if isinstance(value, Mapping):
        return redact_mapping(value)
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def redact_value(value: Any) -> Any:
    """`value` (text, mapping or list) with secrets masked as the logs mask them."""
    return _mask_value(value)


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `data` with secret-named keys replaced and secrets in values masked."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        named_secret = _SECRET_KEY.search(str(key)) and key not in ("event", "token_kind")
        if named_secret or (str(key).lower() == "code" and _secret_code(value, data)):
            out[key] = REDACTED
        else:
            out[key] = _mask_value(value)
    return out


def _secret_code(value: Any, beside: Mapping[str, Any]) -> bool:
    """A `code` field that may be an OAuth authorization code."""
    if any(key in beside for key in _OAUTH_CONTEXT_KEYS):
        return True  # the callback's query: code is the authorization code
    if value is None or isinstance(value, bool | int):
        return False  # no code at all, or a status number
    text = getattr(value, "value", value)  # an enum member: its value
    return not (isinstance(text, str) and _FAILURE_CODE.fullmatch(text))


def redact_processor(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return redact_mapping(event_dict)


class _CurrentStderr:
    """Writes to whatever `sys.stderr` is when a line is logged, not when logging was
    configured: a swapped stream (a test's capture, a daemonised process) is followed, and a
    closed one is never written to."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "INFO", fmt: str = "json", service: str | None = None) -> None:
    """Configure structlog (and route stdlib logging through it) once per process."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_processor,
    ]
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_CurrentStderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processor=renderer, foreign_pre_chain=[*shared[:-1], redact_processor]
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "pymongo", "httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    if not any(isinstance(f, CoordinatorNotYetAvailable) for f in coordinator.filters):
        coordinator.addFilter(CoordinatorNotYetAvailable())


class CoordinatorNotYetAvailable(logging.Filter):
    """aiokafka logs ERROR "Group Coordinator Request failed: [Error 15]
    CoordinatorNotAvailableError" while the broker has not yet elected the group's
    coordinator (every start against a fresh broker: `__consumer_offsets` is being
    created) and then retries by itself. It is lowered to DEBUG (shown only when the log
    level is DEBUG); any other coordinator error keeps its level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (
            record.levelno >= logging.ERROR
            and str(record.msg).startswith("Group Coordinator Request failed")
            and "CoordinatorNotAvailable" in record.getMessage()
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


def get_logger(name: str | None = None) -> Any:
    return structlog.get_logger(name)


def bind_correlation(correlation_id: str | None, causation_id: str | None = None) -> None:
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id, causation_id=causation_id)


def clear_correlation() -> None:
    structlog.contextvars.unbind_contextvars("correlation_id", "causation_id")
