"""OAuth 2.0 errors as the Microsoft identity platform returns them (AADSTS codes).

Token endpoint body: {"error", "error_description", "error_codes", "timestamp", "trace_id",
"correlation_id", "error_uri"}; the description starts with "AADSTSnnnn: ..." and ends with
trace/correlation ids and a timestamp, as on login.microsoftonline.com.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any


class IdentityError(Exception):
    """An OAuth error with its AADSTS code; rendered by the token/authorize endpoints."""

    def __init__(self, error: str, aadsts: int, message: str, status: int = 400) -> None:
        super().__init__(f"AADSTS{aadsts}: {message}")
        self.error = error
        self.aadsts = aadsts
        self.message = message
        self.status = status

    def body(self, now: datetime, correlation_id: str | None = None) -> dict[str, Any]:
        trace_id = str(uuid.uuid4())
        correlation = correlation_id or str(uuid.uuid4())
        timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"AADSTS{self.aadsts}: {self.message} Trace ID: {trace_id} "
            f"Correlation ID: {correlation} Timestamp: {timestamp}"
        )
        return {
            "error": self.error,
            "error_description": description,
            "error_codes": [self.aadsts],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }
