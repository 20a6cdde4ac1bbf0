"""One settings class for every Agora process (env prefix ``AGORA_``)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_LOCAL_SECRET = "agora-local-development-secret-do-not-use-in-production"


class Settings(BaseSettings):
    """Where the services are, how long things last, and the secrets.

    Durations are settings so that tests can run every timer with short values on
    the dev server (the time-skipping test server cannot be installed here).
    """

    model_config = SettingsConfigDict(env_prefix="AGORA_", extra="ignore")

    env: Literal["local", "test", "production"] = "local"

    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_db: str = "agora"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_prefix: str = Field(default="agora", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "agora"
    llm_task_queue: str = "agora-llm"
    api_url: str = "http://127.0.0.1:8000"
    llm_model: str = "offline"
    llm_base_url: str | None = None
    llm_concurrency: int = Field(default=4, ge=1, le=256)

    admin_token: SecretStr | None = None
    token_secret: SecretStr = SecretStr(_LOCAL_SECRET)

    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    agent_offline_after_seconds: float = Field(default=90.0, gt=0)
    continue_as_new_after_events: int = Field(default=10_000, ge=100)

    @model_validator(mode="after")
    def _refuse_unsafe_production_defaults(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if self.token_secret.get_secret_value() == _LOCAL_SECRET:
            problems.append("AGORA_TOKEN_SECRET must be set")
        if len(self.token_secret.get_secret_value()) < 32:
            problems.append("AGORA_TOKEN_SECRET must be at least 32 characters")
        admin = self.admin_token.get_secret_value() if self.admin_token else ""
        if len(admin) < 32:
            problems.append("AGORA_ADMIN_TOKEN must be set to at least 32 characters")
        if "guest:guest@" in self.amqp_url:
            problems.append("AGORA_AMQP_URL must not use RabbitMQ's guest account")
        if problems:
            raise ValueError("unsafe settings for production: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment."""
    return Settings()
