"""What the worker registers; the tests build their workers through the same function."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.worker import FixedSizeSlotSupplier, UnsandboxedWorkflowRunner, Worker, WorkerTuner

from activities.chat_actions import ChatActions
from activities.delivery import DeliveryActivities
from activities.events import EventActivities
from activities.ledger import LedgerActivities
from activities.lives import LifeActivities
from activities.llm import LlmActivities, Mind
from activities.store import StoreActivities
from activities.tasks import TaskActivities
from activities.turns import TurnActivities
from bus import EventBus
from core.settings import Settings
from core.temporal import tracing_interceptors
from persistence import AttentionRepository, Database
from persistence.contexts import ContextSaver
from persistence.recent import RecentMessages
from workers.slots import WorkflowSlots
from workflows.agent import AgentWorkflow
from workflows.chat import ChatWorkflow
from workflows.guard import CommandGuard
from workflows.task import TaskWorkflow

WORKFLOWS = [AgentWorkflow, ChatWorkflow, TaskWorkflow]
ACTIVITY_CLASSES = (StoreActivities, EventActivities, LlmActivities)


def _tracing_unless_on(client: Client) -> list:
    """Temporal's tracing for this worker, unless its client brings it already."""
    if any(type(i).__name__ == "TracingInterceptor" for i in client.config()["interceptors"]):
        return []
    return tracing_interceptors()


def build_workers(
    client: Client,
    settings: Settings,
    database: Database,
    bus: EventBus,
    analyser=None,
    contexts: ContextSaver | None = None,
    **worker_options,
) -> list[Worker]:
    """The workflow worker and the LLM worker (its own queue and concurrency limit),
    sharing this process's recent messages and its hosted agents' context writes
    (``contexts``: the caller writes what waits when the workers stop); ``analyser``
    replaces the processing step's runnable (a slow model, in tests)."""
    recent = RecentMessages()
    if contexts is None:
        contexts = context_saver(database, settings)
    return [
        build_worker(
            client,
            settings,
            database,
            bus,
            analyser=analyser,
            recent=recent,
            contexts=contexts,
            **worker_options,
        ),
        build_llm_worker(client, settings, database, analyser, recent=recent, contexts=contexts),
    ]


def context_saver(database: Database, settings: Settings) -> ContextSaver:
    """The hosted agents' context writes of one worker process (debounced)."""
    return ContextSaver(AttentionRepository(database), settings.context_save_seconds)


def build_llm_worker(
    client: Client,
    settings: Settings,
    database: Database,
    analyser=None,
    recent: RecentMessages | None = None,
    contexts: ContextSaver | None = None,
) -> Worker:
    """LangChain calls on their own task queue, so a slow model delays no hand-over (nor,
    with the processing step here, any delivery)."""
    llm = LlmActivities(
        database, settings.llm_model, settings.llm_base_url, analyser, client, recent, contexts
    )
    return Worker(
        client,
        task_queue=settings.llm_task_queue,
        activities=[llm.choose_speaker, llm.compose_reply, llm.analyse_messages],
        max_concurrent_activities=settings.llm_concurrency,
    )


def build_worker(
    client: Client,
    settings: Settings,
    database: Database,
    bus: EventBus,
    analyser=None,
    recent: RecentMessages | None = None,
    contexts: ContextSaver | None = None,
    **worker_options,
) -> Worker:
    """A worker on ``settings.task_queue`` with every workflow and activity registered;
    what it delivers and stores it keeps in ``recent`` for its hosted agents' turns."""
    recent = recent if recent is not None else RecentMessages()
    store = StoreActivities(database, analyser, recent)
    events = EventActivities(bus)
    actions = ChatActions(client, recent)
    ledger = LedgerActivities(database, client)
    tasks = TaskActivities(database, client)
    delivery = DeliveryActivities(events, store, actions)
    lives = LifeActivities(events, store, ledger)
    # the in-process models' turns (offline): local activities of the agents' workflows
    turns = TurnActivities(
        Mind(database, client, settings.llm_model, settings.llm_base_url, recent, contexts),
        actions,
    )
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        # a bug in a handler fails that command, not the workflow task (forever)
        interceptors=[CommandGuard(), *_tracing_unless_on(client)],
        activities=[
            store.store_manifest,
            store.store_credential,
            store.revoke_credentials,
            store.store_chat,
            store.store_messages,
            store.store_contexts,
            store.store_read_marks,
            store.store_floor,
            store.store_attention,
            actions.post_as_agent,
            actions.yield_floor,
            actions.request_floor,
            actions.notify_members,
            events.publish_events,
            delivery.deliver_batch,
            lives.flush_agent,
            lives.set_up_life,
            turns.speak,
            events.ensure_inbox,
            ledger.open_account,
            ledger.debit,
            ledger.record,
            ledger.draw_chat_deposit,
            ledger.record_chat_movements,
            tasks.escrow_reward,
            tasks.store_task,
            tasks.open_task_chat,
            tasks.set_task_activity,
            tasks.store_review,
            tasks.recompute_reputation,
            tasks.post_task_brief,
            tasks.submit_as_agent,
        ],
        **({} if settings.workflow_sandbox else {"workflow_runner": UnsandboxedWorkflowRunner()}),
        tuner=WorkerTuner.create_composite(
            workflow_supplier=WorkflowSlots(
                settings.workflow_task_slots, settings.workflow_replay_slots
            ),
            activity_supplier=FixedSizeSlotSupplier(100),  # the SDK's defaults
            local_activity_supplier=FixedSizeSlotSupplier(100),
            nexus_supplier=FixedSizeSlotSupplier(100),
        ),
        # a workflow task left on a dead worker's sticky queue goes to the shared queue
        # after this long (the SDK's default is 10 s): a crashed worker's chats resume soon
        sticky_queue_schedule_to_start_timeout=timedelta(
            seconds=settings.sticky_schedule_to_start_seconds
        ),
        **worker_options,
    )
