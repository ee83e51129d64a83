"""Settings, read from the environment with the prefix ``EXCHANGE_``."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXCHANGE_", extra="ignore")

    env: Environment = Environment.development
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://...). Unset: an embedded server runs in data_dir.",
    )
    data_dir: Path = Field(default=Path("exchange-data"), description="Embedded database and local state.")
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The hub's external base URL; the token issuer and the audience of client assertions.",
    )
    token_audience: str = "exchange-hub"
    token_ttl_seconds: int = Field(default=600, ge=30, le=86_400)
    workers: int | None = Field(
        default=None, ge=1, description="API processes; default 1, or 1 per core in production."
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_hot_pool_size: int = Field(
        default=8, ge=1, description="Connections per process for governed reads, token checks and audit."
    )
    log_level: str = "INFO"
    log_json: bool = True
    open_data_rate_per_minute: int = Field(
        default=120, ge=1, description="Open-data queries allowed per client address and minute."
    )
    decision_working_days: int = Field(
        default=10, ge=1, le=60, description="Working days a source department has to decide on a request."
    )
    discrepancy_working_days: int = Field(
        default=10, ge=1, le=60, description="Working days a source department has to settle a discrepancy."
    )
    grant_max_days: int = Field(
        default=1095, ge=1, description="The longest period a grant may be asked for."
    )
    webhook_allowed_networks: str = Field(
        default="", description="CIDRs webhooks may target although private, loopback or link-local."
    )
    webhook_retry_schedule: str = Field(
        default="0,5,300,1800,7200,18000,36000,36000",
        description="Seconds before each delivery attempt (Standard Webhooks); then a dead letter.",
    )
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_pause_after_dead: int = Field(
        default=3, ge=1, description="Dead-lettered events in a row after which a subscription is paused."
    )
    delivery_in_serve: bool = Field(
        default=True, description="`exchange serve` also delivers webhooks (as `exchange worker` does)."
    )
    catalog_dir: Path | None = Field(default=None, description="Catalogue YAML applied by `exchange serve`.")
    max_body_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Largest JSON or form body (413 beyond); NDJSON streams.",
    )
    max_line_bytes: int = Field(
        default=1 << 20,
        ge=1024,
        description="Longest NDJSON line; a longer one is reported, not applied.",
    )
    client_rate_per_second: float = Field(
        default=1000, ge=0, description="Requests a second per client system and hub process (0: no limit)."
    )
    token_rate_per_minute: int = Field(
        default=120, ge=1, description="Token requests a minute per client address, across all processes."
    )
    cors_origins: str = Field(
        default="", description="Browser origins allowed to call the API (comma-separated); none by default."
    )

    @property
    def retry_schedule(self) -> list[float]:
        return [float(part) for part in self.webhook_retry_schedule.split(",") if part.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/oauth/token"

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
