"""Typed inputs, results and state of the workflows and activities."""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel, Field

from models.agents import AgentManifest, AgentUpdate, Brain
from models.attention import AttentionState, AttentionUpdate, AttentionView, DialogueNotice
from models.chats import ChatPublic, Member, Message, MessageContext, Posted, Role
from models.events import EventEnvelope
from models.floor import Charge, FloorSettingsUpdate, FloorState
from models.market import DebitRequest, Review, Task


class AgentState(BaseModel):
    """Everything ``AgentWorkflow`` knows; handed whole to ``continue_as_new``."""

    manifest: AgentManifest
    token_id: str
    """The id (``jti``) of the agent's first token; the token itself never enters history."""
    token_expires_at: datetime
    offline_after_seconds: float
    projection_interval_seconds: float = 1.0
    """At most one manifest and attention write per this interval (debounced)."""
    attention_projection_interval_seconds: float | None = None
    """At most one attention write per this interval, timed apart from the manifest's
    (None: an agent introduced before it, whose attention goes with the manifest)."""
    continue_as_new_after_events: int = 2_000
    continue_as_new_after_updates: int = 1_500
    attention: AttentionState = AttentionState()
    attention_version: int = 0
    attention_stored_version: int = 0
    brain: Brain | None = None
    acts: list[datetime] = []
    """When the hosted agent spoke in the last hour (its budget)."""
    act_count: int = 0
    budget_noted: bool = False
    llm_task_queue: str = "agora-llm"
    local_mind: bool = False
    """The brain's model answers in-process (offline): a turn is one local activity."""
    status_before_offline: str | None = None
    stored_version: int = -1
    pending_events: list[EventEnvelope] = []
    credential_stored: bool = False
    introduced: bool = False
    retiring: bool = False
    retired: bool = False
    retire_correlation_id: str | None = None
    tasks_todo: list[TaskTodo] = []
    """Tasks a hosted agent was assigned and has not submitted yet."""


class AgentStart(BaseModel):
    """Input of ``AgentWorkflow.run``: a fresh introduction or a continued state."""

    state: AgentState
    correlation_id: str | None = None


class ManifestChange(BaseModel):
    """An ``AgentUpdate`` with the correlation id of the request that asked for it."""

    update: AgentUpdate
    profile_fields: list[str] = []
    """The profile fields the caller set (a null clears an optional one)."""
    correlation_id: str | None = None


class RetireRequest(BaseModel):
    correlation_id: str | None = None


class Heartbeat(BaseModel):
    correlation_id: str | None = None


class StoreManifestInput(BaseModel):
    manifest: AgentManifest


class StoreCredentialInput(BaseModel):
    """Record a token id for an agent; ``revoke_others`` makes it the agent's only live one."""

    agent_id: str
    token_id: str
    expires_at: datetime
    revoke_others: bool = False
    at: datetime | None = None


class RevokeCredentialsInput(BaseModel):
    agent_id: str
    at: datetime


class TokenRotation(BaseModel):
    """A new token id minted by the API; the workflow records it and revokes the rest."""

    token_id: str
    expires_at: datetime
    correlation_id: str | None = None


class DebitInput(BaseModel):
    account: str
    request: DebitRequest


class PublishEventsInput(BaseModel):
    events: list[EventEnvelope] = Field(min_length=1)
    without_inbox: list[str] = []
    """Recipients whose inbox gets no copy (a chat's hosted members: their workflows hear
    the room); the events still name them, so an observer of theirs sees them."""


# ---- chats ---------------------------------------------------------------------------


class TranscriptLine(BaseModel):
    speaker: str
    text: str


class RoomChange(BaseModel):
    """Tells an agent's workflow that it joined or left a chat."""

    agent_id: str
    chat_id: str
    joined: bool
    chat_type: str = "group"


class ChatState(BaseModel):
    """Everything ``ChatWorkflow`` knows; handed whole to ``continue_as_new``."""

    chat: ChatPublic
    members: dict[str, Member]
    next_seq: int = 1
    version: int = 0
    stored_version: int = -1
    read_seq: dict[str, int] = {}
    pending_reads: dict[str, int] = {}
    pending_messages: list[Message] = []
    pending_events: list[EventEnvelope] = []
    pending_rooms: list[RoomChange] = []
    pending_notices: dict[str, DialogueNotice] = {}
    continue_as_new_after_events: int = 2_000
    continue_as_new_after_updates: int = 1_500
    max_batch: int = 500
    notice_interval_seconds: float = 1.0
    """The members' agents are told of new messages at most once per this interval
    (the first after a quiet one at once; a floor change or a mention never waits)."""
    group_notice_interval_seconds: float | None = None
    """The interval for plain news in a group chat without floor control, where no agent
    acts on it (None: a chat started before it existed uses ``notice_interval_seconds``)."""
    projection_interval_seconds: float = 1.0
    """The floor's projection is written at most once per this interval (the newest
    state wins; a closing chat and continue-as-new carry what is behind)."""
    floor: FloorState | None = None
    floor_version: int = 0
    floor_stored_version: int = 0
    recent: list[TranscriptLine] = []
    llm_task_queue: str = "agora-llm"
    posted_keys: dict[str, Posted] = {}
    """The answers to the last posts that carried an Idempotency-Key, oldest first: a
    retry gets the first answer even after ``continue_as_new`` (which forgets update ids)."""
    pending_contexts: dict[int, MessageContext] = {}
    """Late readings of the processing step, to be written onto stored messages."""
    posted_bodies: dict[str, str] = {}
    """The body fingerprint each of those keys was first posted with: the same key with
    another body is refused, never answered with the first post's answer."""


class ChatStart(BaseModel):
    state: ChatState
    correlation_id: str | None = None


class PostMessage(BaseModel):
    sender: str
    content: str
    message_type: str = "text"
    platform: bool = False
    correlation_id: str | None = None
    idempotency_key: str | None = None
    fingerprint: str | None = None
    """A digest of the body, so the same Idempotency-Key with another body is told apart."""
    yield_floor: bool = False
    """Yield the floor with this post (one call for a turn's last message)."""
    ask_again: bool = False
    """When this post ends the sender's turn, ask for the next one with it: a standing
    request, granted once someone has posted after it (a hosted agent's turn)."""
    model_seconds: float | None = None
    """A hosted agent's time inside the model for this post (the turn's overhead is the
    rest)."""
    tokens: int | None = None
    """The model tokens this post cost, as the model reported them (``tokens(n)``)."""
    trace: dict[str, str] | None = None
    """The request's trace context (W3C headers) when the API traces: the delivery of
    this post joins the request's trace."""

    @staticmethod
    def digest(message_type: str, content: str) -> str:
        return hashlib.sha256(f"{message_type}\x00{content}".encode()).hexdigest()[:32]


class PostAnswer(Posted):
    """The chat's answer to a post as a hosted agent's activity reads it: with the notice
    of the grant this post made (a turn's post that yields, under a policy that grants by
    itself), which that activity signals to the next speaker's agent at once, instead of
    the chat's deliver step after it. The REST answer is ``Posted``: this stays inside."""

    handover_to: str | None = None
    handover: DialogueNotice | None = None
    message: Message | None = None
    """The accepted message, with a hand-over: the activity keeps it among its worker's
    recent messages before the next speaker hears of its turn, so that turn reads what
    was said in the worker's memory, not from the store (the chat's deliver step, which
    also keeps it there, may not have started yet)."""


class MembershipChange(BaseModel):
    actor: str
    target: str
    role: Role | None = None
    hosted: bool = False
    """The target thinks in Agora (its manifest's ``hosted``): no inbox copies for it."""
    platform: bool = False
    correlation_id: str | None = None


class CloseChat(BaseModel):
    actor: str
    platform: bool = False
    correlation_id: str | None = None


class ReadInput(BaseModel):
    agent_id: str
    up_to_seq: int


class MemberRetired(BaseModel):
    agent_id: str
    correlation_id: str | None = None


class StoreMessagesInput(BaseModel):
    messages: list[Message] = Field(min_length=1)
    members: list[str] = []
    analysis_timeout_seconds: float = 2.0
    read: bool = True
    """False: store without the processing step (it reads later, on the LLM queue)."""


class AnalyseMessagesInput(BaseModel):
    """The processing step for one batch, on the LLM queue, after the batch was delivered."""

    messages: list[Message] = Field(min_length=1)
    members: list[str] = []


class StoreContextsInput(BaseModel):
    """What a late processing step read, written onto messages already stored."""

    chat_id: str
    contexts: dict[int, MessageContext]


class StoreMessagesResult(BaseModel):
    stored: int
    """Newly stored: a retried batch stores 0 (its messages met their own ids)."""
    contexts: dict[int, MessageContext] = {}
    """By seq: what the processing step read (empty where it failed or timed out)."""


class StoreChatInput(BaseModel):
    chat: ChatPublic


class StoreReadMarksInput(BaseModel):
    chat_id: str
    read_seq: dict[str, int]


# ---- floor control -------------------------------------------------------------------


class ChooseSpeakerInput(BaseModel):
    topic: str
    transcript: list[TranscriptLine]
    candidates: list[str]
    model: str | None = None


class SpeakerChoice(BaseModel):
    raw: str


class FloorSignal(BaseModel):
    agent_id: str
    priority: int = 0
    reason: str | None = None
    correlation_id: str | None = None


class FloorCommand(BaseModel):
    actor: str
    agent_id: str | None = None
    platform: bool = False
    correlation_id: str | None = None


class ChatFundsCommand(BaseModel):
    """A deposit into a chat's account from its owner's, or a withdrawal back."""

    actor: str
    amount: int
    memo: str = ""
    entry_id: str = ""
    """A deposit's ledger entry id, a withdrawal's key (from the request's
    Idempotency-Key): a retry moves once."""
    platform: bool = False
    correlation_id: str | None = None


class ChatDepositInput(BaseModel):
    chat_id: str
    owner: str
    entry_id: str
    amount: int
    memo: str = ""
    correlation_id: str | None = None


class ChatMovementsInput(BaseModel):
    """What a chat's account paid, for the ledger (each entry once, by its id)."""

    chat_id: str
    charges: list[Charge]
    at: datetime


class FloorSettingsChange(BaseModel):
    actor: str
    update: FloorSettingsUpdate
    fields: list[str] = []
    """The fields the caller sent (a null among them clears a limit): the data
    converter does not keep which fields of ``update`` were set."""
    platform: bool = False
    correlation_id: str | None = None

    def changes(self) -> dict:
        """What to change: a null clears an optional limit and leaves the rest alone."""
        sent = self.update.model_dump(include=set(self.fields))
        return {k: v for k, v in sent.items() if v is not None or k in CLEARABLE_FLOOR_FIELDS}


CLEARABLE_FLOOR_FIELDS = frozenset(
    {"max_turns", "idle_timeout_seconds", "termination_text", "termination"}
)


class StoreFloorInput(BaseModel):
    chat_id: str
    floor: FloorState


# ---- attention and hosted agents -----------------------------------------------------


class AttentionChange(BaseModel):
    update: AttentionUpdate
    correlation_id: str | None = None


class ComposeInput(BaseModel):
    agent_id: str
    chat_id: str
    name: str
    bio: str | None = None
    skills: list[str] = []
    persona: str | None = None
    model: str = "offline"
    through_seq: int = 0
    """The dialogue's newest seq the agent was told of: a store behind it is caught up
    from the chat's accepted, not yet stored tail."""
    context_seq: int | None = None
    """The last seq of the dialogue's context as the agent's last turn saved it (a
    worker's kept context is used only when it is that one)."""


class Reply(BaseModel):
    content: str
    tokens: int = 0
    context_lines: int = 0
    model_seconds: float = 0.0
    """Time inside the model's call (the rest of the activity is loading and saving the
    dialogue's context)."""
    context_seq: int | None = None
    """The last seq of the dialogue's context as saved by this turn."""


class DeliverBatchInput(BaseModel):
    """One step of a chat's delivery: publish ``events``, then store ``messages`` (read by
    the processing step when it answers within its bound), then send ``notices``."""

    events: list[EventEnvelope] = []
    messages: list[Message] = []
    members: list[str] = []
    without_inbox: list[str] = []
    """Members whose inbox gets no copy (``PublishEventsInput.without_inbox``)."""
    notices: dict[str, DialogueNotice] = {}
    store_timeout_seconds: float = 2.0
    """A store slower than this is left to the chat's store lane (which stores the batch
    again: idempotent), so a store that is away holds no later delivery back."""
    last_seq_with_notices: bool = False
    """The chat's stored ``last_seq`` is raised to ``last_seq`` when given, not after every
    batch: the chat gives the newest seq its members are told of, when it is newer than
    what it raised before (a keyed write, a scan of ``chats`` on FerretDB v1, once a
    notice interval in a busy chat instead of once a message). False (a step scheduled by
    older code): raised after every batch, as before."""
    last_seq: int | None = None
    """Raise the chat's stored ``last_seq`` to this, after the batch's messages are stored."""


class DeliverBatchResult(BaseModel):
    published: int = 0
    stored: bool = False
    """Every message of the batch is in the store (False: left to the store lane)."""
    contexts: dict[int, MessageContext] = {}
    told: int = 0
    last_seq_raised: int = 0
    """The ``last_seq`` the chat's stored projection was raised to (0: none)."""


class NotifyMembersInput(BaseModel):
    """One batch's notices, one per member whose attention it changed (agent id -> notice)."""

    notices: dict[str, DialogueNotice]


class ActAsAgentInput(BaseModel):
    chat_id: str
    agent_id: str
    content: str | None = None
    update_id: str
    yield_floor: bool = False
    ask_again: bool = False
    """With the yield: ask for the next turn (a standing request, ``ChatWorkflow``)."""
    model_seconds: float | None = None
    tokens: int | None = None


class SpeakInput(BaseModel):
    """A hosted agent's turn with a model that answers in-process: compose, then post (and
    yield), in one local activity."""

    compose: ComposeInput
    post: ActAsAgentInput


class Spoken(BaseModel):
    reply: Reply
    posted: bool
    """False: the chat refused the post (the floor moved on while the model thought)."""
    floor_yielded: bool = False


class StoreAttentionInput(BaseModel):
    agent_id: str
    attention: AttentionView


class SetUpLifeInput(BaseModel):
    """An introduction's writes: the inbox, the token id, the account, the first
    manifest, then the introduction's events."""

    manifest: AgentManifest
    token_id: str
    expires_at: datetime
    events: list[EventEnvelope] = []


class FlushAgentInput(BaseModel):
    """One step of an agent's main loop: publish its events, then store its manifest
    and its attention view (each only when behind and due)."""

    events: list[EventEnvelope] = []
    manifest: AgentManifest | None = None
    attention: StoreAttentionInput | None = None


# ---- tasks ----------------------------------------------------------------------------


class TaskState(BaseModel):
    """Everything ``TaskWorkflow`` knows."""

    task: Task
    escrowed: bool = False
    escrow_refused: str | None = None
    settled_entries: list[str] = []
    """Ledger entries this task's saga has written (payment, refund)."""
    stored_version: int = -1
    pending_events: list[EventEnvelope] = []
    chat_opened: bool = False
    activity_cleared: bool = False
    review_window_seconds: float = 7 * 24 * 3600
    llm_task_queue: str = "agora-llm"
    task_queue: str = "agora"


class TaskStart(BaseModel):
    state: TaskState
    correlation_id: str | None = None


class TaskCommand(BaseModel):
    """Who asks (an agent id, or ``platform``) and what with."""

    actor: str
    agent_id: str | None = None
    price: int | None = None
    note: str = ""
    qualified: bool = False
    reputation: float = 0.0
    result: str | None = None
    reason: str | None = None
    rating: int | None = None
    comment: str = ""
    correlation_id: str | None = None


class EscrowInput(BaseModel):
    task_id: str
    poster: str
    amount: int
    correlation_id: str | None = None


class TaskChatInput(BaseModel):
    task_id: str
    title: str
    poster: str
    assignee: str
    task_queue: str
    llm_task_queue: str


class TaskActivityChange(BaseModel):
    agent_id: str
    task_id: str
    active: bool
    chat_id: str | None = None
    """The task chat, where a hosted assignee does the work."""


class TaskTodo(BaseModel):
    task_id: str
    chat_id: str


class TaskBrief(BaseModel):
    task_id: str
    chat_id: str
    text: str
    update_id: str


class SubmitAsAgent(BaseModel):
    task_id: str
    agent_id: str
    result: str
    update_id: str


class StoreTaskInput(BaseModel):
    task: Task


class StoreReviewInput(BaseModel):
    review: Review
