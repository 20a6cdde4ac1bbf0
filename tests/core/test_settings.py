"""Settings refuse unsafe defaults in production and read the AGORA_ environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings

KEYS = {"k1": "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY="}


def test_local_defaults_are_accepted_outside_production():
    assert Settings(env="local").token_secret.get_secret_value()


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({}, "AGORA_TOKEN_SECRET must be set"),
        ({"token_secret": "s" * 40}, "AGORA_ADMIN_TOKEN"),
        ({"token_secret": "s" * 40, "admin_token": "short"}, "AGORA_ADMIN_TOKEN"),
        ({"token_secret": "s" * 40, "admin_token": "a" * 40}, "AGORA_MESSAGE_KEYS"),
        (
            {"token_secret": "s" * 40, "admin_token": "a" * 40, "message_keys": KEYS},
            "AGORA_CARD_KEY",
        ),
        (
            {
                "token_secret": "s" * 40,
                "admin_token": "a" * 40,
                "message_keys": KEYS,
                "card_key": "LS0t",
            },
            "guest account",
        ),
    ],
)
def test_production_refuses_unsafe_settings(overrides, complaint):
    with pytest.raises(ValidationError, match=complaint):
        Settings(env="production", **overrides)


def test_production_accepts_real_secrets():
    settings = Settings(
        env="production",
        token_secret="s" * 40,
        admin_token="a" * 40,
        amqp_url="amqp://agora:pw@rabbitmq:5672/",
        message_keys=KEYS,
        card_key="LS0t",
    )
    assert settings.env == "production"


def test_settings_come_from_the_agora_environment(monkeypatch):
    monkeypatch.setenv("AGORA_TASK_QUEUE", "from-env")
    monkeypatch.setenv("AGORA_AGENT_OFFLINE_AFTER_SECONDS", "2.5")
    settings = Settings()
    assert settings.task_queue == "from-env"
    assert settings.agent_offline_after_seconds == 2.5


def test_settings_repr_hides_secrets():
    settings = Settings(admin_token="very-secret-admin-token")
    assert "very-secret-admin-token" not in repr(settings)
