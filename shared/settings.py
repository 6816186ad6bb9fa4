"""Configuration from the environment (and `.env`): one typed place for every knob.

Standard names where a convention exists (KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI); everything
else is SMVUE_*. The defaults run against the local infra and emulator; production points
the same code at real Kafka, MongoDB and Microsoft's cloud by configuration alone.
"""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.topics import TopicSpec
from shared.infra.endpoints import LOCAL_MONGO_OPTIONS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SMVUE_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # --- infrastructure
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:19092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "SMVUE_KAFKA_BOOTSTRAP_SERVERS"),
    )
    mongodb_uri: str = Field(
        default=f"mongodb://127.0.0.1:27027/?{LOCAL_MONGO_OPTIONS}",  # the local default
        validation_alias=AliasChoices("MONGODB_URI", "SMVUE_MONGODB_URI"),
    )
    mongodb_database: str = "smvue_calendar"
    topic_prefix: str = Field(default="", description="Prepended to every topic (test isolation).")
    consumer_group_prefix: str = "smvue"

    # --- Microsoft identity platform and Graph
    graph_base_url: str = "https://graph.microsoft.com/v1.0"
    authority_host: str = "https://login.microsoftonline.com"
    tenant: str = Field(
        default="common",
        description="The authority's tenant segment: `common` (work, school and personal "
        "Outlook.com accounts, as the help page promises), `organizations` (work or school "
        "accounts only), or one tenant's id or domain.",
    )
    client_id: str = "00000000-0000-0000-0000-000000000000"
    client_secret: SecretStr = SecretStr("")
    ca_bundle: str | None = Field(default=None, description="Extra CA bundle (the emulator's).")
    msal_instance_discovery: bool = Field(
        default=True,
        description="MSAL's authority validation; off only for an authority it doesn't know "
        "(the emulator). The real cloud keeps it on.",
    )
    oauth_flow_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    oauth_scopes: list[str] = Field(
        default_factory=lambda: ["Calendars.ReadWrite", "Calendars.Read"],
        description="What the help page says SMVue requests (MSAL adds the OpenID scopes).",
    )
    oauth_redirect_uri: str = "http://127.0.0.1:8080/oauth/outlook/callback"
    oauth_return_url_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts the browser may be sent back to after connecting (SMVue's web "
        "app): exact names, or `*.example.com` for its subdomains. https only; loopback "
        "(http or https) is always allowed, for local development. Anything else is refused "
        "(no open redirect).",
    )
    oauth_fallback_return_url: str | None = Field(
        default=None,
        description="Where a sign-in answer that matches no started connect (expired, "
        "replayed, forged) sends the browser, with status=error&code=authorization_failed: "
        "SMVue's Integrations page. Unset: a short page says to start again from there.",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:8080",
        description="Where Graph reaches the ingress (notificationUrl / lifecycle URL).",
    )

    # --- security
    service_tokens: list[SecretStr] = Field(
        default_factory=list, description="Bearer tokens the SMVue backend may use (rotation)."
    )
    token_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Token-encryption keys by key id (base64, 32 bytes)."
    )
    token_active_key_id: str | None = None

    # --- service ports (HTTP: API and/or /healthz, /readyz, /metrics)
    ingress_port: int = 8080
    syncer_port: int = 8081
    writer_port: int = 8082
    projector_port: int = 8083
    http_host: str = "127.0.0.1"

    # --- behaviour
    log_level: str = "INFO"
    log_format: str = Field(default="json", pattern="^(json|console)$")
    shutdown_grace_seconds: float = 15.0
    consumer_max_in_flight: int = Field(
        default=64,
        ge=1,
        description="Records (or batches) one consumer handles at once, each key in order.",
    )
    consumer_max_pending_per_partition: int = Field(
        default=2000,
        ge=1,
        description="Fetched but unfinished records per partition before it is paused.",
    )
    projector_linger_seconds: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="How long the projector waits for other partitions' meeting batches to "
        "apply them in the same bulk write (group commit; services/projector/adapters/grouped.py).",
    )
    max_body_bytes: int = Field(default=256 * 1024, description="HTTP request body limit.")

    def topic(self, spec: TopicSpec) -> str:
        return f"{self.topic_prefix}{spec.name}"

    def dead_letter_topic(self, spec: TopicSpec) -> str:
        return f"{self.topic_prefix}{spec.dead_letter}"

    def group_id(self, service: str) -> str:
        return f"{self.topic_prefix}{self.consumer_group_prefix}.{service}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
