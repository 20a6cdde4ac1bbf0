"""Timeouts and retry policies for every activity call, in one place."""

from datetime import timedelta

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as TimedOut

STORE = {
    "start_to_close_timeout": timedelta(seconds=15),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=0,
        non_retryable_error_types=["ValidationError", "InvalidDocument"],
    ),
    "schedule_to_close_timeout": timedelta(hours=1),
}
"""MongoDB writes: idempotent, so retried until the store is back (bounded at one hour)."""

PUBLISH = STORE
"""RabbitMQ publishes: idempotent by event id, same bounds as the store."""

ANNOUNCE = {
    "start_to_close_timeout": timedelta(seconds=5),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=2),
        maximum_attempts=3,
    ),
}
"""A notice for caches (a revocation): a few quick tries, then the caller goes on; the
caches' own bounds (a lost connection, their time to live) cover a notice not sent."""

LLM = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=10),
        maximum_attempts=3,
        non_retryable_error_types=["UnknownModel"],
    ),
}
"""LangChain calls: a few bounded tries, then the caller falls back (a chat never waits on a
model for long)."""

LOCAL_FLUSH = {
    "start_to_close_timeout": timedelta(seconds=3),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=1),
        maximum_attempts=2,
        non_retryable_error_types=["ValidationError", "InvalidDocument"],
    ),
}
"""An agent's set-up, events and projections tried first inside its workflow task (a local
activity); past these bounds the regular activity (``STORE``) waits the outage out."""

LOCAL_TURN = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=2),
        maximum_attempts=4,
        non_retryable_error_types=["UnknownModel"],
    ),
}
"""A turn with an in-process model, as a local activity (compose, then post): a few quick
tries inside the agent's workflow task, then the agent lets the dialogue go."""

LOCAL_FAILURES = (ActivityError, ApplicationError, TimedOut)
"""How a local activity that gave up reaches the workflow: an ``ActivityError`` when it
ran, but a bare ``TimeoutError`` (timed out) or ``ApplicationError`` (raised) when the
attempt is resolved from its marker. Catching one and not the others made a replay fail
the workflow where the run had gone on (the nondeterminism error TMPRL1100, or the life
failing with the model's error: a hosted agent whose model failed in a direct chat
died), so every local call catches all three."""


SUMMARIES = {
    "analyse_messages": "Read mentions, importance and intent in delivered messages",
    "choose_speaker": "Ask the model who speaks next",
    "compose_reply": "Compose a reply with the agent's mind",
    "deliver_batch": "Publish a batch, store it, tell the members' agents",
    "ensure_inbox": "Make sure the agent's inbox queue exists",
    "flush_agent": "Publish the agent's events, store its manifest and attention",
    "escrow_reward": "Move the reward from the poster into escrow",
    "ledger_debit": "Pay from the agent's account",
    "ledger_record": "Record a ledger movement",
    "draw_chat_deposit": "Move a deposit from the owner into the chat's account",
    "record_chat_movements": "Record what the chat's account paid",
    "open_account": "Open the agent's account",
    "notify_members": "Tell the members' agents what the batch changed for them",
    "open_task_chat": "Open the task chat for poster and assignee",
    "post_as_agent": "Post the hosted agent's message",
    "post_task_brief": "Post the platform's note in the task chat",
    "publish_events": "Publish events to RabbitMQ",
    "recompute_reputation": "Recompute the assignee's reputation",
    "request_floor": "Ask for the floor for the hosted agent",
    "revoke_credentials": "Revoke every token of the agent",
    "set_task_activity": "Update the assignee's current activities",
    "set_up_life": "Open the agent's inbox, token, account and manifest",
    "speak": "Compose the hosted agent's reply in-process and post it",
    "store_attention": "Store the attention view and dialogue contexts",
    "store_chat": "Store the chat and its memberships",
    "store_contexts": "Write the processing step's reading onto stored messages",
    "store_credential": "Record the agent's token id",
    "store_floor": "Store the floor and its speaker queue",
    "store_manifest": "Store the agent's manifest",
    "store_messages": "Store a batch of messages",
    "store_read_marks": "Store read receipts",
    "store_review": "Store a review and the new reputation",
    "store_task": "Store the task",
    "submit_as_agent": "Submit the hosted agent's work",
    "yield_floor": "Yield the floor the hosted agent holds",
}
"""What each activity does, as a sentence: the summary the Temporal UI shows in a history."""


def summary(method) -> str:
    """The sentence for an activity method (its registered name, when not listed)."""
    name = getattr(method, "__temporal_activity_definition").name
    return SUMMARIES.get(name, name.replace("_", " ").capitalize())


async def run(method, arg, **kwargs):
    """``workflow.execute_activity_method`` with the activity's sentence as its summary."""
    from temporalio import workflow

    return await workflow.execute_activity_method(method, arg, summary=summary(method), **kwargs)


async def run_local(method, arg, **kwargs):
    """``workflow.execute_local_activity_method``, with the activity's sentence too."""
    from temporalio import workflow

    return await workflow.execute_local_activity_method(
        method, arg, summary=summary(method), **kwargs
    )
