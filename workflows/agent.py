"""AgentWorkflow: one per agent (id ``agent/<agent_id>``), the source of truth of its life."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

STEADY_WAKE = "steady-wake-timer"
"""The patch by which the main loop keeps one timer for its next deadline (going offline,
a projection coming due) while that deadline stays (``outbox.Wake``): each workflow task
of a busy agent had cancelled its timer and started another for the same moment."""
KEEP_FOCUS_WAITING = "keep-focus-while-waiting-a-turn"
"""The patch by which a hosted agent between its turns in a floor chat keeps its focus
there (it had let go after each turn and taken it back at the next grant: two
``agent.focus_changed`` events and a manifest write a turn, and a flush that held the
agent's workflow task while the next grant came)."""
ACT_KEY_WITH_SEQ = "act-key-with-last-seq"
"""The patch by which a hosted act's post key carries the last seq the agent had read."""
ASK_AGAIN = "ask-again-with-the-post"
"""The patch by which a hosted agent's turn asks for its next one with the post that
yields the floor (a standing request in the chat): the agent does not ask again on the
next notice, and the next speaker's grant goes out with the post that freed the floor."""
LOCAL_SET_UP = "life-set-up-in-its-first-task"
"""The patch by which a life's set-up (inbox, token id, account, first manifest, the
introduction's event) runs as a local activity of its first workflow task: the
introduction answers with that task, not after an activity's trip through the server and
a second task for its answer. A store too slow for the local bound falls back to the
regular activity, retried until the store is back."""
AGENT_ERA = "agent-era-1"
"""The era (``workflows.patches``) that stands for every patch below: a life started
since records one patch marker a run, not one a patch."""
AGENT_ERA_COVERS = frozenset(
    {
        "debounced-projections",
        "one-activity-a-flush",
        "life-set-up-in-one-step",
        STEADY_WAKE,
        "act-before-flush",
        LOCAL_SET_UP,
        "room-keeps-early-notices",
        "interaction-before-new-messages",
        KEEP_FOCUS_WAITING,
        "ask-in-the-task",
        ACT_KEY_WITH_SEQ,
        "hosted-turn-in-one-step",
        ASK_AGAIN,
        "announce-revocations",
    }
)

with workflow.unsafe.imports_passed_through():
    from activities.chat_actions import ChatActions
    from activities.events import EventActivities
    from activities.ledger import LedgerActivities
    from activities.lives import LifeActivities
    from activities.llm import LlmActivities
    from activities.store import StoreActivities
    from activities.tasks import TaskActivities
    from activities.turns import TurnActivities
    from core.names import (
        AGENT_WORKFLOW,
        AgentHandlers,
        ChatHandlers,
        chat_workflow_id,
    )
    from core.temporal import STATUS
    from models.agents import FOCUS_PREFIX, AgentManifest, AgentStatus, PublicProfile
    from models.attention import (
        FOCUS_LOG,
        AttentionView,
        DialogueEntry,
        DialogueNotice,
        DialogueScore,
        FocusSwitch,
    )
    from models.events import (
        REVOKED,
        AgentBudgetExhausted,
        AgentFocusChanged,
        AgentIntroduced,
        AgentReplyFailed,
        AgentRetired,
        AgentStatusChanged,
        AgentTokenRotated,
        CredentialsRevoked,
        EventEnvelope,
    )
    from models.market import DebitRequest, DebitResult, agent_account
    from models.workflow_io import (
        ActAsAgentInput,
        AgentStart,
        AttentionChange,
        ComposeInput,
        DebitInput,
        FlushAgentInput,
        Heartbeat,
        ManifestChange,
        MemberRetired,
        PublishEventsInput,
        RetireRequest,
        RevokeCredentialsInput,
        RoomChange,
        SetUpLifeInput,
        SpeakInput,
        StoreAttentionInput,
        StoreCredentialInput,
        StoreManifestInput,
        SubmitAsAgent,
        TaskActivityChange,
        TaskTodo,
        TokenRotation,
    )
    from workflows import options
    from workflows.attention import choose_focus, priority_parts, scores
    from workflows.outbox import Outbox, Projection, Wake, run_is_long
    from workflows.patches import Patches


@workflow.defn(name=AGENT_WORKFLOW)
class AgentWorkflow:
    """An agent's life: introduced, active/busy/idle/offline, retired.

    Handlers change the state and bump the manifest's version; the main loop writes
    the newest manifest and publishes the pending events in one batch, then the
    handlers that wait for their change to be stored return.
    """

    @workflow.init
    def __init__(self, start: AgentStart) -> None:
        self.state = start.state
        self._patched = Patches(AGENT_ERA, AGENT_ERA_COVERS)
        self._rotations = 0
        self._updates = 0
        self._ledger_lock = asyncio.Lock()
        self._status_attribute = str(start.state.manifest.status)
        self._debounced = False
        self._projected_at: datetime | None = None
        """When the manifest (and, for an agent without an attention interval of its own,
        the attention view) was last written in this run."""
        self._attention_projected_at: datetime | None = None
        self._store_waiters = 0
        self._armed = False
        self._flush_in_one_step = False

    @workflow.run
    async def run(self, start: AgentStart) -> AgentManifest:
        """Live until retired, continuing as new before the history grows large."""
        state = self.state
        # the manifest and attention projections: at most one write per interval, the
        # newest state wins (a handler waiting for its change to be stored goes at once)
        self._debounced = self._patched("debounced-projections")
        # events, manifest and attention in one activity (three before, one after another)
        self._flush_in_one_step = self._debounced and self._patched("one-activity-a-flush")
        if not state.introduced:
            manifest = state.manifest
            introduced = AgentIntroduced(
                agent_id=manifest.agent_id,
                name=manifest.public_profile.name,
                status=str(manifest.status),
            )
            self._outbox().emit(introduced, correlation_id=start.correlation_id)
            state.introduced = True
        if not state.credential_stored and self._patched("life-set-up-in-one-step"):
            await self._set_up()
        if not state.credential_stored:
            await options.run(
                EventActivities.ensure_inbox, state.manifest.agent_id, **options.PUBLISH
            )
            await options.run(
                StoreActivities.store_credential,
                StoreCredentialInput(
                    agent_id=state.manifest.agent_id,
                    token_id=state.token_id,
                    expires_at=state.token_expires_at,
                ),
                **options.STORE,
            )
            await options.run(
                LedgerActivities.open_account, state.manifest.agent_id, **options.STORE
            )
            state.credential_stored = True
        wake = Wake(workflow.now) if self._patched(STEADY_WAKE) else None
        while True:
            # a projection that falls behind during the wait ends it, so the next wait
            # carries the timer for when it comes due
            self._armed = self._until_projection() is not None

            def woken() -> bool:
                return (
                    self._has_work()
                    or self._should_act()
                    or self._has_task_work()
                    or self._due_to_continue()
                    or (self._debounced and not self._armed and self._projections_behind())
                )

            if wake is not None:
                if await wake.until(woken, self._next_wake(), workflow.wait_condition):
                    self._check_presence()
            else:
                try:
                    await workflow.wait_condition(woken, timeout=self._next_wake())
                except TimeoutError:
                    self._check_presence()
            if self._patched("act-before-flush") and self._should_act():
                # a turn first: what it and the notice before it changed is stored and
                # published right after, off the turn's path (the next speaker waits on it)
                await self._act()
            await self._flush()
            if self._has_task_work():
                await self._do_task()
                continue
            if self._should_act():
                await self._act()
                continue
            if state.retired and not self._has_work():
                await workflow.wait_condition(workflow.all_handlers_finished)
                return state.manifest
            if self._history_is_long():
                # the updates that came with this activation run first; what is not
                # stored or published yet travels in the state, so a chat or an agent
                # that never goes quiet still continues as new
                await asyncio.sleep(0)
                if workflow.all_handlers_finished():
                    if self._debounced:  # the new run starts with everything stored
                        await self._flush(force=True)
                    workflow.continue_as_new(AgentStart(state=state))

    async def _set_up(self) -> None:
        """The inbox, the token id, the account and the first manifest in one step, the
        introduction's event after them: the introduction answers once it is done."""
        state = self.state
        snapshot = state.manifest.model_copy(deep=True)
        set_up = SetUpLifeInput(
            manifest=snapshot,
            token_id=state.token_id,
            expires_at=state.token_expires_at,
            events=self._outbox().take(),
        )
        local = self._patched(LOCAL_SET_UP)
        if local:
            try:
                await options.run_local(LifeActivities.set_up_life, set_up, **options.LOCAL_FLUSH)
            except options.LOCAL_FAILURES:
                local = False  # the long way: the same writes and events, idempotent
        if not local:
            await options.run(LifeActivities.set_up_life, set_up, **options.STORE)
        state.credential_stored = True
        self._manifest_projection().stored_up_to(snapshot.version)
        self._projected_at = workflow.now()

    # ---- handlers ---------------------------------------------------------------------

    @workflow.update
    async def introduce(self) -> AgentManifest:
        """Wait until the first manifest is stored and return it (update-with-start)."""
        self._updates += 1
        await self._stored(0)
        return self.state.manifest

    @workflow.update
    async def update_manifest(self, change: ManifestChange) -> AgentManifest:
        """Apply an agent's own change to its manifest; return it once stored."""
        self._updates += 1
        manifest = self.state.manifest
        update = change.update
        if update.status is not None and update.status != manifest.status:
            self._set_status(AgentStatus(update.status), change.correlation_id)
            self.state.status_before_offline = None
        if update.current_activities is not None:
            manifest.current_activities = list(update.current_activities)
        if update.available_resources is not None:
            manifest.available_resources = list(update.available_resources)
        if update.public_profile is not None:
            merged = manifest.public_profile.model_dump() | update.public_profile.model_dump(
                include=set(change.profile_fields)
            )
            try:
                manifest.public_profile = PublicProfile.model_validate(merged)
            except ValueError as exc:
                raise ApplicationError(str(exc), type="Invalid", non_retryable=True) from exc
        await self._stored(self._touch())
        return self.state.manifest

    @update_manifest.validator
    def _validate_update_manifest(self, change: ManifestChange) -> None:
        self._reject_if_retired()

    @workflow.signal
    def heartbeat(self, beat: Heartbeat) -> None:
        """Mark the agent online and stamp ``last_seen``; the offline timer restarts."""
        if self.state.retiring:
            return
        manifest = self.state.manifest
        manifest.last_seen = workflow.now()
        manifest.online_status = True
        if manifest.status == AgentStatus.OFFLINE:
            back = self.state.status_before_offline or AgentStatus.ACTIVE
            self._set_status(AgentStatus(back), beat.correlation_id)
            self.state.status_before_offline = None
        self._touch()

    @workflow.signal(name=AgentHandlers.TASK_ACTIVITY)
    def task_activity(self, change: TaskActivityChange) -> None:
        """A task's workflow says this agent took on a task, or is done with it."""
        if self.state.retired:
            return
        activities = self.state.manifest.current_activities
        label = f"task:{change.task_id}"
        todo = self.state.tasks_todo
        hosted = self.state.brain is not None and change.chat_id
        if change.active and hosted and all(t.task_id != change.task_id for t in todo):
            todo.append(TaskTodo(task_id=change.task_id, chat_id=change.chat_id or ""))
        if not change.active:
            self.state.tasks_todo = [t for t in todo if t.task_id != change.task_id]
        if change.active and label not in activities:
            activities.append(label)
        elif not change.active and label in activities:
            activities.remove(label)
        else:
            return
        self._touch()

    @workflow.signal(name=AgentHandlers.ROOM_CHANGED)
    def room_changed(self, change: RoomChange) -> None:
        """A chat workflow says this agent joined or left it (room_participation)."""
        if self.state.retired:
            return
        rooms = self.state.manifest.room_participation
        entries = self.state.attention.entries
        if change.joined and change.chat_id not in rooms:
            rooms.append(change.chat_id)
            fresh = DialogueEntry(chat_id=change.chat_id, chat_type=change.chat_type)
            if self._patched("room-keeps-early-notices"):
                # the chat's first notice may come before this: what it counted stays
                entries.setdefault(change.chat_id, fresh)
            else:
                entries[change.chat_id] = fresh
        elif not change.joined and change.chat_id in rooms:
            rooms.remove(change.chat_id)
            entries.pop(change.chat_id, None)
        else:
            return
        self.state.attention_version += 1
        self._touch()
        self._refocus(None)

    @workflow.signal(name=AgentHandlers.DIALOGUE_NOTICE)
    def dialogue_notice(self, notice: DialogueNotice) -> None:
        """A chat's batch: new messages, a mention, the floor, a read mark."""
        if self.state.retiring:
            return
        entry = self.state.attention.entries.get(notice.chat_id)
        if entry is None:
            entry = DialogueEntry(chat_id=notice.chat_id, chat_type=notice.chat_type)
            self.state.attention.entries[notice.chat_id] = entry
        entry.floor_control = notice.floor_control
        interacted_first = self._patched("interaction-before-new-messages")
        if notice.interacted and interacted_first:
            # the agent's own post read what came before it; the notice's new messages
            # are the ones after it (a notice gathers both while a busy chat waits)
            self._interacted(entry, notice.at)
        entry.message_importance = max(entry.message_importance, notice.importance)
        # a notice sent twice (its activity retried) counts its messages once: a chat's
        # notices come in seq order, so one at or below what is counted is a repeat
        if notice.new_messages and notice.last_seq > entry.last_seq:
            entry.unread += notice.new_messages
        entry.last_seq = max(entry.last_seq, notice.last_seq)
        entry.mentioned = entry.mentioned or notice.mentioned
        if notice.interacted and not interacted_first:
            self._interacted(entry, notice.at)
        if notice.read_up_to is not None:
            entry.unread = max(0, min(entry.unread, entry.last_seq - notice.read_up_to))
            if entry.unread == 0:
                entry.mentioned = False
        if notice.floor is not None:
            entry.floor_granted = notice.floor == "granted"
            entry.requested = False
        self.state.attention_version += 1
        self._refocus(None)

    @staticmethod
    def _interacted(entry: DialogueEntry, at) -> None:
        entry.unread = 0
        entry.mentioned = False
        entry.message_importance = 0.0
        entry.last_interaction = at

    @workflow.update
    def tune_attention(self, change: AttentionChange) -> AttentionView:
        """The agent sets its scheduler, weights, and per-dialogue importance."""
        self._updates += 1
        attention = self.state.attention
        update = change.update
        if update.scheduler is not None:
            attention.scheduler = update.scheduler
        if update.weights is not None:
            attention.weights = update.weights
        for chat_id, tuning in update.dialogues.items():
            entry = attention.entries[chat_id]
            # a null means "leave it": the data converter does not keep which fields were set
            for field, value in tuning.model_dump(exclude_none=True).items():
                setattr(entry, field, value)
        self.state.attention_version += 1
        self._attention_projected_at = None  # the agent's own change is stored at once
        self._refocus(change.correlation_id)
        return self.attention()

    @tune_attention.validator
    def _validate_tune(self, change: AttentionChange) -> None:
        self._reject_if_retired()
        unknown = sorted(set(change.update.dialogues) - set(self.state.attention.entries))
        if unknown:
            raise ApplicationError(
                f"dialogues: not a dialogue of this agent: {', '.join(unknown)}", type="Invalid"
            )

    @workflow.query
    def attention(self) -> AttentionView:
        """The attention queue with each dialogue's score, and the current focus."""
        attention = self.state.attention
        now = workflow.now()
        scored = scores(attention, now)
        ranked = sorted(attention.entries.values(), key=lambda e: (-scored[e.chat_id], e.chat_id))
        return AttentionView(
            agent_id=self.state.manifest.agent_id,
            scheduler=attention.scheduler,
            weights=attention.weights,
            current_focus=attention.focus,
            recent_focus=attention.recent_focus,
            dialogues=[
                DialogueScore(
                    entry=e,
                    score=round(scored[e.chat_id], 4),
                    parts={
                        k: round(v, 4) for k, v in priority_parts(e, attention.weights, now).items()
                    },
                )
                for e in ranked
            ],
            turns_per_hour=self.state.brain.turns_per_hour if self.state.brain else None,
            turns_last_hour=sum(1 for t in self.state.acts if (now - t).total_seconds() < 3600),
        )

    @workflow.update
    async def retire(self, request: RetireRequest) -> AgentManifest:
        """Leave every chat, revoke the token, mark the manifest retired, then complete."""
        self._updates += 1
        self.state.retiring = True
        self.state.retire_correlation_id = request.correlation_id
        await workflow.wait_condition(
            lambda: self.state.retired and self.state.stored_version >= self.state.manifest.version
        )
        return self.state.manifest

    @workflow.update
    async def rotate_token(self, rotation: TokenRotation) -> None:
        """Make a new token id the agent's only live one (the API minted the token)."""
        self._updates += 1
        self._rotations += 1
        try:
            await options.run(
                StoreActivities.store_credential,
                StoreCredentialInput(
                    agent_id=self.state.manifest.agent_id,
                    token_id=rotation.token_id,
                    expires_at=rotation.expires_at,
                    revoke_others=True,
                    at=workflow.now(),
                ),
                **options.STORE,
            )
            await self._announce_revocation(rotation.correlation_id)
        finally:
            self._rotations -= 1
        self._outbox().emit(
            AgentTokenRotated(agent_id=self.state.manifest.agent_id),
            correlation_id=rotation.correlation_id,
        )

    @workflow.update(name=AgentHandlers.DEBIT)
    async def debit(self, request: DebitRequest) -> DebitResult:
        """Pay from the agent's account: one debit at a time, so the balance checked is
        the balance spent (a transfer, or a task's reward into escrow)."""
        self._updates += 1
        async with self._ledger_lock:
            try:
                return await options.run(
                    LedgerActivities.debit,
                    DebitInput(
                        account=agent_account(self.state.manifest.agent_id), request=request
                    ),
                    **options.STORE,
                )
            except ActivityError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError):
                    raise ApplicationError(cause.message, type=cause.type) from exc
                raise

    @debit.validator
    def _validate_debit(self, request: DebitRequest) -> None:
        self._reject_if_retired()
        if request.amount <= 0:
            raise ApplicationError("amount: must be positive", type="Invalid")
        if request.credit == agent_account(self.state.manifest.agent_id):
            raise ApplicationError("recipient: an account does not pay itself", type="Invalid")

    @rotate_token.validator
    def _validate_rotate(self, rotation: TokenRotation) -> None:
        self._reject_if_retired()

    @retire.validator
    def _validate_retire(self, request: RetireRequest) -> None:
        self._reject_if_retired()

    @workflow.query
    def manifest(self) -> AgentManifest:
        """The live manifest (MongoDB may lag behind by one batch)."""
        return self.state.manifest

    # ---- the main loop's work ---------------------------------------------------------

    def _has_work(self) -> bool:
        state = self.state
        return (
            (state.retiring and not state.retired)
            or self._projection_work()
            or bool(self._outbox())
        )

    def _projection_work(self) -> bool:
        """A projection is behind and due."""
        return (self._manifest_projection().behind and self._due("manifest")) or (
            self._attention_projection().behind and self._due("attention")
        )

    def _apart(self) -> bool:
        """The attention view has an interval of its own (agents introduced since it)."""
        return self.state.attention_projection_interval_seconds is not None

    def _due_at(self, kind: str) -> datetime | None:
        """When the debounced projection ``kind`` may be written next (None: now, it has
        not been written in this run)."""
        if kind == "attention" and self._apart():
            last = self._attention_projected_at
            seconds = self.state.attention_projection_interval_seconds
        else:
            last, seconds = self._projected_at, self.state.projection_interval_seconds
        return None if last is None else last + timedelta(seconds=seconds)

    def _due(self, kind: str) -> bool:
        """Store ``kind`` now: not debounced (an older run), someone waits for the manifest,
        the agent retires, or its interval since the last write has passed."""
        waited = self._store_waiters and (kind == "manifest" or not self._apart())
        if not self._debounced or waited or self.state.retiring:
            return True
        at = self._due_at(kind)
        return at is None or workflow.now() >= at

    def _projections_behind(self) -> bool:
        return self._manifest_projection().behind or self._attention_projection().behind

    def _projection_due(self) -> bool:
        """Both projections due (the runs that store them one activity each)."""
        return self._due("manifest")

    def _next_wake(self) -> timedelta | None:
        """When the loop must look again though nothing arrived: going offline, or a
        debounced projection coming due."""
        wakes = [w for w in (self._until_offline(), self._until_projection()) if w is not None]
        return min(wakes) if wakes else None

    def _until_projection(self) -> timedelta | None:
        if not self._debounced:
            return None
        behind = [
            kind
            for kind, projection in (
                ("manifest", self._manifest_projection()),
                ("attention", self._attention_projection()),
            )
            if projection.behind
        ]
        due = [at for at in map(self._due_at, behind) if at is not None]
        if not due:
            return None  # nothing behind, or due now: the loop has work
        return max(min(due) - workflow.now(), timedelta(milliseconds=1))

    async def _stored(self, version: int) -> None:
        """Wait until the manifest of ``version`` is stored (and have it stored now)."""
        self._store_waiters += 1
        try:
            await workflow.wait_condition(lambda: self.state.stored_version >= version)
        finally:
            self._store_waiters -= 1

    async def _flush(self, *, force: bool = False) -> None:
        state = self.state
        if state.retiring and not state.retired:
            # a rotation in flight records its token first; then every token is revoked
            await workflow.wait_condition(lambda: self._rotations == 0)
            await options.run(
                StoreActivities.revoke_credentials,
                RevokeCredentialsInput(agent_id=state.manifest.agent_id, at=workflow.now()),
                **options.STORE,
            )
            await self._announce_revocation(state.retire_correlation_id)
            for chat_id in list(state.manifest.room_participation):
                handle = workflow.get_external_workflow_handle(chat_workflow_id(chat_id))
                try:
                    await handle.signal(
                        ChatHandlers.MEMBER_RETIRED,
                        MemberRetired(
                            agent_id=state.manifest.agent_id,
                            correlation_id=state.retire_correlation_id,
                        ),
                    )
                except Exception:  # the chat's workflow has ended (closed): nothing to leave
                    workflow.logger.info("chat %s has no live workflow", chat_id)
            state.manifest.room_participation = []
            state.manifest.online_status = False
            self._set_status(AgentStatus.RETIRED, state.retire_correlation_id)
            self._outbox().emit(
                AgentRetired(agent_id=state.manifest.agent_id),
                correlation_id=state.retire_correlation_id,
            )
            self._touch()
            state.retired = True
        if self._flush_in_one_step:
            await self._flush_in_one(force=force)
            return
        if force or self._projection_due():
            await self._store_projections()
        if outbox := self._outbox():
            await options.run(
                EventActivities.publish_events,
                PublishEventsInput(events=outbox.take()),
                **options.PUBLISH,
            )

    async def _flush_in_one(self, *, force: bool) -> None:
        """The events, and the projections that are behind and due, in one activity."""
        state = self.state
        manifest, attention = self._manifest_projection(), self._attention_projection()
        snapshot = None
        if manifest.behind and (force or self._due("manifest")):
            snapshot = state.manifest.model_copy(deep=True)
        view = None
        if attention.behind and (force or self._due("attention")):
            view = StoreAttentionInput(agent_id=state.manifest.agent_id, attention=self.attention())
        outbox = self._outbox()
        if snapshot is None and view is None and not outbox:
            return
        if self._apart():
            if snapshot is not None:
                self._projected_at = workflow.now()
            if view is not None:
                self._attention_projected_at = workflow.now()
        elif snapshot is not None or view is not None:
            self._projected_at = workflow.now()
        attention_version = attention.version
        flush = FlushAgentInput(events=outbox.take(), manifest=snapshot, attention=view)
        try:
            # in this workflow task (no second one for the answer): the common case
            await options.run_local(LifeActivities.flush_agent, flush, **options.LOCAL_FLUSH)
        except options.LOCAL_FAILURES:
            # the broker or the store is away: a regular activity waits it out, and the
            # workflow answers its signals and updates meanwhile (idempotent: a repeat
            # of what the local attempts did changes nothing)
            await options.run(LifeActivities.flush_agent, flush, **options.STORE)
        if snapshot is not None:
            manifest.stored_up_to(snapshot.version)
            self._sync_search_attributes()
        if view is not None:
            attention.stored_up_to(attention_version)

    async def _store_projections(self) -> None:
        """Store the newest manifest and attention view, when behind."""
        state = self.state
        manifest, attention = self._manifest_projection(), self._attention_projection()
        if self._projections_behind():
            self._projected_at = workflow.now()
        while manifest.behind:
            snapshot = state.manifest.model_copy(deep=True)
            await options.run(
                StoreActivities.store_manifest,
                StoreManifestInput(manifest=snapshot),
                **options.STORE,
            )
            manifest.stored_up_to(snapshot.version)
            self._sync_search_attributes()
        if attention.behind:
            version = attention.version
            await options.run(
                StoreActivities.store_attention,
                StoreAttentionInput(agent_id=state.manifest.agent_id, attention=self.attention()),
                **options.STORE,
            )
            attention.stored_up_to(version)

    def _outbox(self) -> Outbox:
        return Outbox(
            self.state.pending_events, new_id=lambda: str(workflow.uuid4()), now=workflow.now
        )

    def _manifest_projection(self) -> Projection:
        return Projection(self.state, "manifest.version", "stored_version")

    def _attention_projection(self) -> Projection:
        return Projection(self.state, "attention_version", "attention_stored_version")

    def _check_presence(self) -> None:
        manifest = self.state.manifest
        if not manifest.online_status or manifest.last_seen is None:
            return
        silence = (workflow.now() - manifest.last_seen).total_seconds()
        if silence < self.state.offline_after_seconds:
            return
        manifest.online_status = False
        if manifest.status not in (AgentStatus.OFFLINE, AgentStatus.RETIRED):
            self.state.status_before_offline = manifest.status
            self._set_status(AgentStatus.OFFLINE, None)
        self._touch()

    def _until_offline(self) -> timedelta | None:
        manifest = self.state.manifest
        if not manifest.online_status or manifest.last_seen is None:
            return None
        due = manifest.last_seen + timedelta(seconds=self.state.offline_after_seconds)
        return max(due - workflow.now(), timedelta(milliseconds=1))

    # ---- attention and the hosted mind ----------------------------------------------

    def _refocus(self, correlation_id: str | None) -> None:
        attention = self.state.attention
        new = choose_focus(
            attention, workflow.now(), keep_waiting=self._patched(KEEP_FOCUS_WAITING)
        )
        if new == attention.focus:
            return
        old, attention.focus = attention.focus, new
        attention.focus_changed_at = workflow.now()
        switch = FocusSwitch(at=attention.focus_changed_at, to=new)
        attention.recent_focus = [*attention.recent_focus[-(FOCUS_LOG - 1) :], switch]
        # the focus owns one line of current_activities; tasks and the agent's own keep theirs
        kept = [a for a in self.state.manifest.current_activities if not a.startswith(FOCUS_PREFIX)]
        self.state.manifest.current_activities = ([f"{FOCUS_PREFIX}{new}"] if new else []) + kept
        self._touch()
        self._outbox().emit(
            AgentFocusChanged(agent_id=self.state.manifest.agent_id, from_=old, to=new),
            correlation_id=correlation_id,
        )

    def _should_act(self) -> bool:
        """A hosted agent acts on its focus: speaks where it holds the floor, in a direct chat
        with unread messages, or where it is mentioned in a chat without floor control; asks
        for the floor where a floor-controlled chat has something for it."""
        state = self.state
        focus = state.attention.focus
        if state.brain is None or focus is None or state.retiring:
            return False
        entry = state.attention.entries.get(focus)
        if entry is None:
            return False
        if entry.floor_granted:
            return True
        if entry.chat_type == "direct":
            return entry.unread > 0
        if entry.floor_control:
            return (entry.unread > 0 or entry.mentioned) and not entry.requested
        return entry.mentioned

    async def _act(self) -> None:
        """Think about the focused dialogue with the brain, post the reply, yield the floor."""
        state = self.state
        entry = state.attention.entries[state.attention.focus]
        if entry.chat_type == "group" and entry.floor_control and not entry.floor_granted:
            entry.requested = True
            self.state.attention_version += 1
            ask = ActAsAgentInput(
                chat_id=entry.chat_id,
                agent_id=state.manifest.agent_id,
                update_id=f"hosted/{state.manifest.agent_id}/ask",
            )
            if self._patched("ask-in-the-task"):
                # a signal to the chat: in this workflow task, not a trip through a queue
                try:
                    await options.run_local(ChatActions.request_floor, ask, **options.LOCAL_TURN)
                except options.LOCAL_FAILURES:
                    entry.requested = False  # asked again on the next notice
            else:
                await options.run(ChatActions.request_floor, ask, **options.STORE)
            self._refocus(None)
            return
        chat_id = entry.chat_id
        now = workflow.now()
        state.acts = [t for t in state.acts if (now - t).total_seconds() < 3600]
        agent_id = state.manifest.agent_id
        state.act_count += 1
        key = f"hosted/{agent_id}/{chat_id}/{state.act_count}"
        if self._patched(ACT_KEY_WITH_SEQ):
            # a workflow task lost with its worker after the chat took the post leaves
            # the chat with the key and this history without the act: the next act of
            # the same count would be answered with that post and say nothing. What the
            # agent had read tells the acts apart (the retry of the same act reads the
            # same, so it is still taken once)
            key = f"{key}/{entry.last_seq}"
        if len(state.acts) >= state.brain.turns_per_hour:
            if not state.budget_noted:
                self._outbox().emit(
                    AgentBudgetExhausted(
                        agent_id=agent_id, turns_per_hour=state.brain.turns_per_hour
                    )
                )
                state.budget_noted = True
            await self._let_go(entry, key)
            return
        state.budget_noted = False
        state.acts.append(now)
        if self._patched("hosted-turn-in-one-step"):
            await self._speak(entry, key)
            return
        try:
            reply = await self._compose(chat_id)
        except ActivityError:
            self._outbox().emit(AgentReplyFailed(agent_id=agent_id, chat_id=chat_id))
            await self._let_go(entry, key)
            return
        posted = await options.run(
            ChatActions.post_as_agent,
            ActAsAgentInput(
                chat_id=chat_id, agent_id=agent_id, content=reply.content, update_id=key
            ),
            **options.STORE,
        )
        if not posted:  # the floor moved on while the model thought: nothing was said
            entry.floor_granted = False
        await self._let_go(entry, key)

    async def _speak(self, entry: DialogueEntry, key: str) -> None:
        """One turn: compose, then post with the yield of a floor it holds, in one step.
        An in-process model does both in a local activity of this workflow task; a remote
        one composes on the LLM queue, then the post goes with its yield in one call."""
        state, agent_id, chat_id = self.state, self.state.manifest.agent_id, entry.chat_id
        post = ActAsAgentInput(
            chat_id=chat_id, agent_id=agent_id, update_id=key, yield_floor=entry.floor_granted
        )
        post.ask_again = entry.floor_granted and self._patched(ASK_AGAIN)
        try:
            if state.local_mind:
                spoken = await options.run_local(
                    TurnActivities.speak,
                    SpeakInput(compose=self._compose_input(chat_id), post=post),
                    **options.LOCAL_TURN,
                )
                reply = spoken.reply
                posted, yielded = spoken.posted, spoken.floor_yielded
            else:
                reply = await self._compose(chat_id)
                post.content, post.model_seconds = reply.content, reply.model_seconds
                post.tokens = reply.tokens
                posted = await options.run(ChatActions.post_as_agent, post, **options.STORE)
                yielded = posted and post.yield_floor
        except options.LOCAL_FAILURES:
            self._outbox().emit(AgentReplyFailed(agent_id=agent_id, chat_id=chat_id))
            await self._let_go(entry, key)
            return
        entry.context_seq = reply.context_seq
        if yielded or not posted:  # yielded with the post, or the floor had moved on
            entry.floor_granted = False
        if yielded and post.ask_again:
            # the chat queued the next turn's request with the post and tells the agent
            # nothing more; where it did not (moderator, llm, an ended round) the release
            # notice that follows sets this back and the agent asks when it has news
            entry.requested = True
        await self._let_go(entry, key)

    def _compose_input(self, chat_id: str) -> ComposeInput:
        """What the mind needs for a dialogue: who the agent is, and how far it was told
        of the dialogue and saved its context (so a worker's kept one is used)."""
        state, manifest = self.state, self.state.manifest
        assert state.brain is not None
        entry = state.attention.entries.get(chat_id)
        return ComposeInput(
            agent_id=manifest.agent_id,
            chat_id=chat_id,
            name=manifest.public_profile.name,
            bio=manifest.public_profile.bio,
            persona=state.brain.persona,
            skills=[r.name for r in manifest.available_resources],
            model=state.brain.model,
            through_seq=entry.last_seq if entry else 0,
            context_seq=entry.context_seq if entry else None,
        )

    async def _compose(self, chat_id: str):
        """The brain's next line in a dialogue (LangChain, on the LLM task queue)."""
        return await options.run(
            LlmActivities.compose_reply,
            self._compose_input(chat_id),
            task_queue=self.state.llm_task_queue,
            **options.LLM,
        )

    def _has_task_work(self) -> bool:
        state = self.state
        return state.brain is not None and bool(state.tasks_todo) and not state.retiring

    async def _do_task(self) -> None:
        """A hosted assignee does the work in the task chat: it reads the brief there,
        composes its result with the brain, posts it, and submits it to the task."""
        state = self.state
        todo = state.tasks_todo[0]
        agent_id = state.manifest.agent_id
        state.act_count += 1
        key = f"task-work/{agent_id}/{todo.task_id}/{state.act_count}"
        try:
            reply = await self._compose(todo.chat_id)
        except ActivityError:
            self._outbox().emit(AgentReplyFailed(agent_id=agent_id, task_id=todo.task_id))
            state.tasks_todo = [t for t in state.tasks_todo if t.task_id != todo.task_id]
            return
        await options.run(
            ChatActions.post_as_agent,
            ActAsAgentInput(
                chat_id=todo.chat_id, agent_id=agent_id, content=reply.content, update_id=key
            ),
            **options.STORE,
        )
        await options.run(
            TaskActivities.submit_as_agent,
            SubmitAsAgent(
                task_id=todo.task_id,
                agent_id=agent_id,
                result=reply.content,
                update_id=f"{key}/submit",
            ),
            **options.STORE,
        )
        state.tasks_todo = [t for t in state.tasks_todo if t.task_id != todo.task_id]

    async def _let_go(self, entry: DialogueEntry, key: str) -> None:
        """Leave the dialogue for now: yield a floor it holds; its unread are handled."""
        if entry.floor_granted:
            await options.run(
                ChatActions.yield_floor,
                ActAsAgentInput(
                    chat_id=entry.chat_id,
                    agent_id=self.state.manifest.agent_id,
                    update_id=f"{key}/yield",
                ),
                **options.STORE,
            )
            entry.floor_granted = False
        entry.unread = 0
        entry.mentioned = False
        entry.message_importance = 0.0
        entry.last_interaction = workflow.now()
        self.state.attention_version += 1
        self._refocus(None)

    # ---- helpers ----------------------------------------------------------------------

    def _touch(self) -> int:
        manifest = self.state.manifest
        manifest.version += 1
        manifest.last_updated = workflow.now()
        return manifest.version

    def _set_status(self, new: AgentStatus, correlation_id: str | None) -> None:
        manifest = self.state.manifest
        old = manifest.status
        if old == new:
            return
        manifest.status = new
        changed = AgentStatusChanged(
            agent_id=manifest.agent_id,
            old_status=str(old),
            new_status=str(new),
            online_status=manifest.online_status,
        )
        self._outbox().emit(changed, correlation_id=correlation_id)

    async def _announce_revocation(self, correlation_id: str | None) -> None:
        """Tell every API process the agent's earlier tokens are revoked (stored just
        before), so none keeps accepting one from its cache. Bounded: when the broker is
        away the API processes have lost it too, and do not trust their caches."""
        if not self._patched("announce-revocations"):
            return
        event = EventEnvelope(
            event_id=str(workflow.uuid4()),
            type=REVOKED,
            occurred_at=workflow.now(),
            correlation_id=correlation_id,
            payload=CredentialsRevoked(subject=self.state.manifest.agent_id).as_dict(),
        )
        try:
            await options.run(
                EventActivities.publish_events,
                PublishEventsInput(events=[event]),
                **options.ANNOUNCE,
            )
        except ActivityError:
            workflow.logger.warning("revocation of %s not announced", event.payload["subject"])

    def _sync_search_attributes(self) -> None:
        status = str(self.state.manifest.status)
        if status != self._status_attribute:
            workflow.upsert_search_attributes([STATUS.value_set(status)])
            self._status_attribute = status

    def _history_is_long(self) -> bool:
        return run_is_long(workflow.info(), self._updates, self.state)

    def _due_to_continue(self) -> bool:
        return self._history_is_long() and workflow.all_handlers_finished()

    def _reject_if_retired(self) -> None:
        if self.state.retiring or self.state.retired:
            raise ApplicationError("the agent is retired", type="Conflict", non_retryable=True)
