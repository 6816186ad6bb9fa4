"""The syncer's own knobs (env prefix SMVUE_SYNCER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SyncerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMVUE_SYNCER_", env_file=".env", extra="ignore")

    past_days: int = Field(default=90, ge=0, le=365, description="Cadence look-back.")
    future_days: int = Field(default=30, ge=1, le=365, description="Upcoming 1:1s horizon.")
    page_size: int = Field(default=50, ge=1, le=1000, description="Prefer: odata.maxpagesize.")
    subscription_minutes: int = Field(
        default=4200,
        ge=45,
        le=10_080,
        description="Subscription lifetime asked for. Microsoft's table gives Outlook events "
        "at most 4230 minutes (learn.microsoft.com/graph/api/resources/subscription); a "
        "refused expiry is retried once, shorter, and audited.",
    )
    renew_before_minutes: int = Field(default=24 * 60, ge=5, description="Renew this early.")
    reconcile_seconds: float = Field(
        default=3600.0, ge=1.0, description="Safety delta round per connection."
    )
    tick_seconds: float = Field(default=15.0, ge=0.05, description="Timer resolution.")
    notice_skew_seconds: float = Field(
        default=2.0, ge=0.0, description="Clock-skew allowance when coalescing notices."
    )
    max_parallel_connections: int = Field(
        default=256,
        ge=1,
        description="Connections worked on at once by one instance (Graph's limit is per "
        "mailbox, so this bounds memory and MongoDB load, not throttling).",
    )
    max_parallel_full_rounds: int = Field(
        default=12,
        ge=1,
        description="Full rounds (imports, window slides) at once per instance: each holds "
        "its window's parsed events until applied, so this bounds memory.",
    )
    tick_batch: int = Field(
        default=1000, ge=1, description="At most this many connections per timer query."
    )
    card_refresh_seconds: float = Field(
        default=60.0,
        ge=0.0,
        description="A round refreshes the card's last-sync time at most this often (a Sync "
        "Now, or an error to clear, refreshes it at once).",
    )
    lease_seconds: float = Field(default=300.0, ge=5.0, description="Worker lease per job.")
    retry_base_seconds: float = Field(default=2.0, gt=0, description="Job retry backoff base.")
    retry_max_seconds: float = Field(default=300.0, gt=0, description="Job retry backoff cap.")
    max_job_failures: int = Field(default=20, ge=1, description="Then the job is dropped.")
    watchdog_import_seconds: float = Field(
        default=3600.0, gt=0, description="An import pending longer is relaunched (once)."
    )
    watchdog_round_seconds: float = Field(
        default=86_400.0, gt=0, description="No successful round for longer: relaunched (once)."
    )
