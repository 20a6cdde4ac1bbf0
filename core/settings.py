"""One settings class for every Agora process (env prefix ``AGORA_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
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
    mongodb_max_pool_size: int = Field(default=20, ge=1, le=1000)
    """Connections (so commands in flight) one process keeps to the store. FerretDB v1
    holds a PostgreSQL connection for each statement of an update command until the
    command ends, and one more to write: when every one of its pool's connections is so
    held it waits for ever. Processes x this x (``mongodb_bulk_statements`` + 1) stays
    under FerretDB's ``pool_max_conns`` (240, ``cli/stack.py``): 2 x 20 x 5 for
    ``make up``; the cluster's four processes run with 10."""
    mongodb_bulk_statements: int = Field(default=4, ge=1, le=100_000)
    """At most this many statements in one bulk write; a longer one goes in several (in
    order). Keeps FerretDB v1 out of the deadlock above; real MongoDB can take 1,000."""
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    bus_prefix: str = Field(default="agora", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    amqp_nodes: list[str] = []
    """``host:port`` of each RabbitMQ node behind ``amqp_url`` (a load balancer in front of
    a cluster): ``/readyz`` then says which node does not answer, and stays ready while a
    majority does."""
    queue_type: Literal["classic", "quorum"] = "classic"
    """The type of the durable queues (agents' inboxes, the dead letters): ``quorum`` on
    a RabbitMQ cluster, replicated across its nodes (``make cluster-up``). A queue keeps
    the type it was declared with: switching needs a fresh broker or new queue names."""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "agora"
    llm_task_queue: str = "agora-llm"
    api_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=1, le=65535)
    llm_model: str = "offline"
    llm_base_url: str | None = None
    llm_concurrency: int = Field(default=4, ge=1, le=256)
    context_save_seconds: float = Field(default=1.0, ge=0, le=60)
    """How long a hosted agent's dialogue context waits to be written after a turn (the
    newest wins, at most one write per dialogue per interval, what waits is written when
    the worker stops; 0 writes after every turn). The worker keeps the newest in memory:
    the stored copy is read only by a worker that lacks it, which catches up from the
    messages said since."""

    admin_token: SecretStr | None = None
    token_secret: SecretStr = SecretStr(_LOCAL_SECRET)
    """The HS256 signing key of agent and operator tokens (JWTs)."""
    jwt_algorithm: Literal["HS256", "RS256", "EdDSA"] = "HS256"
    """The one algorithm the server signs and accepts; RS256 and EdDSA need a key pair."""
    jwt_private_key_file: Path | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: str = "agora"
    jwt_audience: str = "agora-api"
    token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    credential_cache_seconds: float = Field(default=60.0, ge=0, le=3600)
    """How long an API process keeps a token id it found live before reading it again
    (0: read every time). Revocations reach every process over the bus at once; this
    bounds only a revocation whose announcement was lost."""
    credential_cache_size: int = Field(default=10_000, ge=1, le=10_000_000)
    stream_ticket_seconds: float = Field(default=30.0, gt=0, le=300)
    """How long a stream ticket (``POST /v1/agents/{id}/stream-ticket``) may wait to be used."""
    stream_check_seconds: float = Field(default=15.0, gt=0, le=300)
    """A stream that has had no event for this long asks the broker whether events wait in
    its inbox; waiting at two checks in a row, the broker has dropped its consumer, and
    the stream closes with 1012 for its client to reconnect."""
    stream_compression: bool = False
    """Offer WebSocket per-message deflate to stream clients that ask for it. Off: an
    event is a few hundred bytes, and deflating each one cost the API about a fortieth of
    its CPU at 50 messages a second (and the client as much to inflate); worth turning on
    for clients behind a slow link."""

    message_keys: dict[str, SecretStr] = {}
    """AES-256-GCM keys for message content at rest, by key id: base64 of 32 bytes
    (``AGORA_MESSAGE_KEYS='{"k2": "...", "k1": "..."}'``). Old ids stay to read old rows."""
    message_key_id: str | None = None
    """The key id new content is sealed with; the only key when unset and one is given."""

    card_key_file: Path | None = None
    """The platform's EC P-256 private key (PEM) that signs A2A agent cards; its public
    half is ``/.well-known/jwks.json``. Unset outside production: each API process makes
    one for itself at start (``make up`` writes one into ``.agora/`` for its stack)."""
    card_key: SecretStr | None = None
    """The same key given inline, as base64 of the PEM (one line, for an environment)."""

    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    """HTTPS for the API when both are set."""
    tls_ca_file: Path | None = None
    """The CA that signed the services' certificates (clients of the API, MongoDB, AMQPS)."""

    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_message_bytes: int = Field(default=16 * 1024, ge=1)
    rate_per_token_per_second: float = Field(default=20.0, gt=0)
    rate_burst_per_token: int = Field(default=60, ge=1)
    messages_per_agent_per_minute: float = Field(default=120.0, gt=0)
    message_burst_per_agent: int = Field(default=30, ge=1)
    api_replicas: int = Field(default=1, ge=1, le=64)
    """How many API processes share the rate limits above behind one load balancer: each
    allows its 1/N share, so the whole never allows more than the limit."""

    publish_timeout_seconds: float = Field(default=10.0, gt=0)
    readiness_timeout_seconds: float = Field(default=2.0, gt=0)
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """The worker serves the Temporal SDK's own Prometheus metrics on 127.0.0.1 at this
    port (``/metrics``); unset: not served."""
    worker_ready_file: Path | None = None
    """The worker writes its pid here once it polls its task queues, and removes it when it
    stops; ``agora up`` waits for it, so the API never takes work before a worker can."""
    delivered_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often an API process writes its streams' delivery watermarks (``delivered``
    receipts), coalesced per agent and chat; a stream never waits for that write."""
    observer_max_backlog: int = Field(default=10_000, ge=10, le=1_000_000)
    """How many events may wait at the broker for one observer stream (a console, an
    operator's watch) before the stream is closed as too slow (close code 4008): a slow
    watcher must not grow the broker's memory until it stops every publisher."""
    audit_denial_window_seconds: float = Field(default=60.0, gt=0, le=3600)
    """Repeated anonymous denials from one address within this window are audited as the
    first one and one summary (with its count) when the window ends."""
    metrics_refresh_seconds: float = Field(default=15.0, gt=0)
    """How often the API reads its gauges (agents, chats, tasks, queue depths)."""
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    """An API request that has no answer by then gets 504 (a retried post with the same
    Idempotency-Key is safe)."""
    a2a_reply_seconds: float = Field(default=25.0, gt=0, le=3600)
    """How long an A2A task waits for the agent's answer before it fails (below the
    request timeout, so a blocking ``SendMessage`` answers with the failed task)."""
    a2a_allowed_hosts: list[str] = []
    """The hosts A2A may call out to (push notification URLs, remote agents' cards):
    none by default, so the platform cannot be turned against internal addresses."""
    a2a_require_signed_cards: bool = False
    """Refuse a remote agent whose card carries no signature."""
    agent_offline_after_seconds: float = Field(default=90.0, gt=0)
    projection_interval_seconds: float = Field(default=1.0, ge=0, le=3600)
    """An agent's manifest is written to MongoDB at most once per this interval (the
    newest state wins; a change its caller waits for goes at once). Live reads (the
    manifest and attention routes) ask the workflow and never lag."""
    attention_projection_interval_seconds: float = Field(default=10.0, ge=0, le=3600)
    """An agent's attention view (``agent_attention_states``) is written at most once per
    this interval. Every notice changes it (an unread count), no route reads it (the
    attention route asks the workflow), and on FerretDB each write by ``_id`` scans the
    collection: it rides on the agent's next workflow task once due, not one a notice."""
    notice_interval_seconds: float = Field(default=1.0, ge=0, le=60)
    """A busy chat tells its members' agents of new messages at most once per this
    interval (the first message after a quiet one at once; a floor change or a mention
    never waits): each notice costs every member's agent workflow a task."""
    group_notice_interval_seconds: float = Field(default=5.0, ge=0, le=60)
    """In a group chat without floor control, plain news (new messages, no mention) is
    told at most once per this interval instead. No agent acts on it there (a hosted
    agent speaks in such a room when it is mentioned, and a mention never waits): it only
    keeps the members' attention views current. At 50 posts a second into 20 rooms of
    three, the notices were an agent workflow task a message, a quarter of the stack's
    CPU; a direct chat, or one with floor control, keeps ``notice_interval_seconds``."""
    group_notice_spread: float = Field(default=0.5, ge=0, le=1)
    """Each group chat's interval is ``group_notice_interval_seconds`` scaled by a factor
    its id decides, between ``1 - spread/2`` and ``1 + spread/2`` (5 s: 3.75 to 6.25 s),
    so rooms opened together do not tell their members all at once."""
    continue_as_new_after_events: int = Field(default=2_000, ge=100)
    """A worker that restarts replays every busy workflow's history from its start: the
    shorter the run, the sooner a crashed worker's chats answer again: a run much longer
    than this keeps a restarted worker replaying busy chats past the workflow task
    timeout (the worker-kill drill)."""
    sticky_schedule_to_start_seconds: float = Field(default=3.0, gt=0, le=60)
    workflow_task_slots: int = Field(default=100, ge=2, le=1_000)
    """Workflow tasks a worker runs at once (the SDK's default)."""
    workflow_replay_slots: int = Field(default=2, ge=1, le=1_000)
    """Of those, tasks from the shared queue: each replays a whole history (a third of a
    second for a busy chat or agent at 700 events, idle; about a second at the 2,000 of
    ``continue_as_new_after_events``). A worker that takes over a stopped worker's
    workflows replays them this many at a time, sharing one interpreter, so each ends
    well inside the workflow task timeout (10 s), instead of all at once and all too
    late (``workers/slots.py``). Fewer at once replays no slower in all: the replays are
    bound by the interpreter, not by waiting."""
    workflow_sandbox: bool = False
    """Run workflow code in the SDK's sandbox, which isolates each workflow's module
    globals and refuses non-deterministic calls. It is a guard for development, and every
    activation pays for it (each goes through the sandbox's importer and proxies), so the
    worker runs without it and the test suite
    runs every workflow inside it (``tests/conftest.py``): a call the sandbox refuses fails
    CI, not production."""
    continue_as_new_after_updates: int = Field(default=1_500, ge=10, le=1_900)
    """Temporal refuses the 2,001st distinct update of one run
    (``limit.workflowExecution.maxTotalUpdates``), however short its history; a busy
    chat takes one update per post, so chats and agents continue as new well before."""
    skills_catalogue: Literal["open", "closed"] = "open"
    """open: a task may name a skill agents already offer (it joins the catalogue as a
    root); closed: only skills an admin put in the catalogue."""
    task_horizon_days: int = Field(default=365, ge=1, le=3650)
    """How far ahead a task's deadline may be: every client time a workflow adds to stays
    far inside what dates and Temporal's timers can hold."""
    review_window_seconds: float = Field(default=7 * 24 * 3600, gt=0, le=365 * 24 * 3600)
    """How long after a task's deadline its parties may still review each other."""

    @model_validator(mode="after")
    def _replays_within_slots(self) -> Settings:
        if self.workflow_replay_slots > self.workflow_task_slots:
            raise ValueError(
                "AGORA_WORKFLOW_REPLAY_SLOTS must not exceed AGORA_WORKFLOW_TASK_SLOTS"
            )
        return self

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
        if not self.message_keys:
            problems.append("AGORA_MESSAGE_KEYS must hold at least one key")
        if self.card_key_file is None and self.card_key is None:
            problems.append("AGORA_CARD_KEY (or AGORA_CARD_KEY_FILE) must hold the card key")
        if "guest:guest@" in self.amqp_url:
            problems.append("AGORA_AMQP_URL must not use RabbitMQ's guest account")
        if problems:
            raise ValueError("unsafe settings for production: " + "; ".join(problems))
        return self


def secrets_of(settings: Settings) -> list[str]:
    """The configured secrets no log line may carry (``core.logging`` blanks them)."""
    found = [settings.token_secret.get_secret_value()]
    if settings.admin_token is not None:
        found.append(settings.admin_token.get_secret_value())
    found += [key.get_secret_value() for key in settings.message_keys.values()]
    if settings.card_key is not None:
        found.append(settings.card_key.get_secret_value())
    return found


@lru_cache
def get_settings() -> Settings:
    """Settings read once from the environment."""
    return Settings()
