"""ChatWorkflow: one per chat (id ``chat/<chat_id>``), the single writer of its members,
roles and message order."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.chat_actions import ChatActions
    from activities.delivery import DeliveryActivities
    from activities.events import EventActivities
    from activities.ledger import LedgerActivities
    from activities.llm import LlmActivities
    from activities.store import StoreActivities
    from core import tracing
    from core.names import (
        CHAT_WORKFLOW,
        PLATFORM,
        AgentHandlers,
        ChatHandlers,
        agent_workflow_id,
    )
    from core.temporal import STATUS
    from models.attention import newest_told
    from models.chats import (
        RANK,
        ChatPublic,
        Message,
        MessageContext,
        Posted,
        Role,
        a,
        can_post,
        message_id_for,
    )
    from models.events import (
        ChatAccountFunded,
        ChatAccountMoved,
        ChatAccountWithdrawn,
        ChatClosed,
        ChatCreated,
        ChatFloorGranted,
        ChatFloorReleased,
        ChatFloorRequested,
        ChatFloorSettingsChanged,
        ChatMemberJoined,
        ChatMemberLeft,
        ChatRoleChanged,
        FloorEvent,
        MessageSent,
    )
    from models.floor import BudgetView, Charge, FloorSettings, FloorState, FloorView
    from models.workflow_io import (
        AnalyseMessagesInput,
        ChatDepositInput,
        ChatFundsCommand,
        ChatMovementsInput,
        ChatStart,
        ChooseSpeakerInput,
        CloseChat,
        DeliverBatchInput,
        FloorCommand,
        FloorSettingsChange,
        FloorSignal,
        MemberRetired,
        MembershipChange,
        NotifyMembersInput,
        PostAnswer,
        PostMessage,
        PublishEventsInput,
        ReadInput,
        RoomChange,
        StoreChatInput,
        StoreContextsInput,
        StoreFloorInput,
        StoreMessagesInput,
        StoreReadMarksInput,
        TranscriptLine,
    )
    from workflows import options
    from workflows.floor import Floor, FloorError
    from workflows.membership import Membership, Notices, Refusal, conflict, forbidden, not_found
    from workflows.outbox import Outbox, Projection, Wake, run_is_long
    from workflows.patches import Patches
    from workflows.policies import valid_pick

POSTED_KEYS_KEPT = 1000
"""How many Idempotency-Keys a chat remembers across continue-as-new."""
PENDING_BYTES_KEPT = 1024 * 1024
"""What the messages waiting to be stored (and their events) may weigh: the state travels
whole through continue-as-new, whose input Temporal refuses above 2 MiB. Past it a post
is refused with 503 until the store catches up."""
PUBLISH_DURING_BURST = "publish-stored-during-a-burst"
"""The patch that announces stored messages while later ones are still being stored."""
DELIVER_FIRST = "deliver-before-store"
"""The patch that delivers an accepted message at once: publishing, storing and the
processing step run as three lanes, and delivery waits on neither of the others."""
ONE_STEP = "one-activity-a-batch"
"""The patch that publishes, stores and tells the members' agents of a batch in one
activity (one workflow task for its answer, not three), the store lane taking over only
while the store is slow or away."""
FLOOR_DEBOUNCED = "floor-projection-debounced"
"""The patch that writes the floor's projection at most once per
``projection_interval_seconds`` (it was a write for every grant and yield)."""
FLOOR_REQUESTED = "floor-requested-event"
"""The patch that tells the room of a request to speak that joins the queue
(``chat.floor_requested``): watchers of the queue learn of it without asking."""
ROTATION_GRACE = "round-robin-rotation-grace"
"""The patch by which a free round-robin floor waits ``round_robin_grace_seconds`` (a
timer) for the next member in the order that is back for another turn, instead of
granting at once to a later one whose request came first; and by which the main loop
arms its floor timer anew when a handler moves the floor's deadline."""
NOTICE_TIMER_ONLY_WAITING = "notice-timer-only-when-waiting"
"""The patch by which the deliver lane arms the notice interval's timer only while a
notice waits for it (it was armed after every batch, a timer and a workflow task a
message in a chat that posts less than once a notice interval)."""
ASK_AGAIN = "ask-again-with-the-post"
"""The patch by which a post that ends its sender's turn may carry the sender's request
for another one (``PostMessage.ask_again``, a hosted agent's turn): a standing request
(``Floor.request(standing=True)``) that no policy grants before someone posts after it. The
next speaker's request is then in the queue when the floor comes free, and its grant goes
out with the post that freed it, not after a notice and a request of its own."""
HANDOVER_IN_ANSWER = "handover-in-the-answer"
"""The patch by which a turn's post that yields and asks again (a hosted agent's) takes
the notice of the grant it made out of the chat's pending notices and returns it in its
answer (``PostAnswer.handover``): the posting agent's activity signals the next speaker
at once, and the chat's deliver step has no notice to send for it. The grant reaches the
next speaker one activity sooner."""
NOTICE_ARMS_TIMER = "a-notice-that-waits-arms-the-timer"
"""The patch by which a notice that comes while the deliver lane waits with no timer (a
read mark within the interval after the last news, and nothing posted after it) wakes
the lane to arm the interval's timer: it waited for the next post before, for ever in a
chat that went quiet."""
FLOOR_AT_ONCE = "floor-chat-notices-at-once"
"""The patch by which a floor-controlled chat's notices of new messages never wait for
the notice interval (one speaker at a time: few, and each one matters for the next
grant)."""
CHAT_ACCOUNT = "chat-account-movements"
"""The patch by which a chat records what its account paid (a funded chat's turns, its
owner's withdrawals) with an activity of its own, beside the main loop; only a chat
whose owner deposited into it has any."""
TIMERS_KEPT = "timers-kept-across-wake-ups"
"""The patch by which the main loop and the deliver lane keep their timer while its
deadline stands (``outbox.Wake``, as the agent's ``steady-wake-timer``): each post woke
them, cancelled the debounced floor projection's or the notice interval's timer and
started it again for the same deadline, two events and a server timer task a message.
After ``CHAT_ERA``: not in its set."""
CHAT_ERA = "chat-era-1"
"""The era (``workflows.patches``) that stands for every patch above: a chat started
since records one patch marker a run (each continue-as-new), not one a patch."""
CHAT_ERA_COVERS = frozenset(
    {
        PUBLISH_DURING_BURST,
        DELIVER_FIRST,
        ONE_STEP,
        FLOOR_DEBOUNCED,
        FLOOR_REQUESTED,
        ROTATION_GRACE,
        NOTICE_TIMER_ONLY_WAITING,
        ASK_AGAIN,
        HANDOVER_IN_ANSWER,
        NOTICE_ARMS_TIMER,
        FLOOR_AT_ONCE,
        CHAT_ACCOUNT,
        "open-after-rooms",
        "notices-by-activity",
    }
)
STORE_GATED = frozenset(
    {"chat.created", "chat.member_joined", "chat.member_left", "chat.role_changed", "chat.closed"}
)
"""Events about the chat itself: they go out once the chat's projection says the same, so a
reader who gets one finds the change in ``GET /v1/chats/{id}``."""
MESSAGE_OVERHEAD_BYTES = 1024
"""A pending message's weight besides its content: the message and its event (~900 B)."""


def pending_weight(messages: list[Message]) -> int:
    """About what these pending messages and their events weigh in the chat's state."""
    return sum(2 * len(m.content.encode()) + MESSAGE_OVERHEAD_BYTES for m in messages)


def _answer(refusal: Refusal | FloorError) -> ApplicationError:
    """A membership's or a floor's refusal as the update's failure (its kind: the HTTP
    status)."""
    return ApplicationError(str(refusal), type=refusal.kind, non_retryable=True)


def _not_found() -> ApplicationError:
    return _answer(not_found())


def _forbidden(reason: str) -> ApplicationError:
    return _answer(forbidden(reason))


def _conflict(reason: str) -> ApplicationError:
    return _answer(conflict(reason))


@workflow.defn(name=CHAT_WORKFLOW)
class ChatWorkflow:
    """Membership, roles and the message sequence of one chat.

    An accepted message gets its ``seq`` in the update handler and is durable in the
    workflow's history when the update returns; the main loop stores and publishes
    what accumulated in one batch, so a burst costs one activity per batch.
    """

    @workflow.init
    def __init__(self, start: ChatStart) -> None:
        self.state = start.state
        self._patched = Patches(CHAT_ERA, CHAT_ERA_COVERS)
        self._updates = 0
        self._lanes: list[asyncio.Task] = []
        self._one_step = False
        self._floor_notices_at_once = False
        self._notice_timer_only_waiting = False
        self._ask_again = False
        """Standing requests with a turn's post, and news alone waits for the notice
        interval in a floor chat (``ASK_AGAIN``)."""
        self._handover = False
        """A turn's post answers with the next speaker's grant (``HANDOVER_IN_ANSWER``)."""
        self._notice_arms_timer = False
        """A notice that comes while the lane waits with no timer arms one
        (``NOTICE_ARMS_TIMER``)."""
        self._floor_debounced = False
        self._rotation_grace = False
        self._timers_kept = False
        """The loops keep a timer while its deadline stands (``TIMERS_KEPT``)."""
        self._wake = Wake(workflow.now)
        """The main loop's: the floor's next deadline or its projection coming due."""
        self._notice_wake = Wake(workflow.now)
        """The deliver lane's: the notice interval's end."""
        self._traces: dict[str, dict[str, str]] = {}
        """Each accepted post's trace context, until its delivery (in memory only: a
        replayed post delivers outside its request's trace, and no command differs)."""
        self._floor_stored_at: datetime | None = None
        """When the floor's projection was last written (debounced)."""
        """A floor-controlled chat tells its members of each batch at once: who has not
        asked to speak hears of the new message in time for the next grant."""
        self._store_behind = False
        """A batch's store did not answer in time: the store lane stores (and retries)
        until it has caught up, and delivery publishes alone meanwhile."""
        self._delivering = False
        """A one-step batch is out: its notices were taken from the state, so the run
        does not continue as new until its answer is in."""
        self._told_at: datetime | None = None
        """When the members' agents were last told of new messages (one-step)."""
        self._raised_through = 0
        """The newest ``last_seq`` a delivery step of this run raised the stored chat to:
        a batch whose notices tell of nothing newer does not write it again."""
        self._telling_rooms = 0
        """Room signals in flight: the chat's opening answers once none is."""
        self._recording = False
        """The account's movements are out to the ledger (the run does not end or
        continue as new until they are recorded)."""
        self._recorder: asyncio.Task | None = None

    @workflow.run
    async def run(self, start: ChatStart) -> ChatPublic:
        """Serve the chat until it is closed, continuing as new when the history grows."""
        state = self.state
        if state.stored_version < 0 and not state.pending_events:
            members = list(state.members)
            self._outbox().emit(ChatCreated(chat=self._public()), members, start.correlation_id)
            state.pending_rooms += [
                RoomChange(
                    agent_id=m, chat_id=state.chat.chat_id, joined=True, chat_type=state.chat.type
                )
                for m in members
            ]
        self._floor_debounced = self._patched(FLOOR_DEBOUNCED)
        self._rotation_grace = self._patched(ROTATION_GRACE)
        self._timers_kept = self._patched(TIMERS_KEPT)
        if self._patched(DELIVER_FIRST):
            self._one_step = self._patched(ONE_STEP)
            self._floor_notices_at_once = self._one_step and self._patched(FLOOR_AT_ONCE)
            self._notice_timer_only_waiting = self._one_step and self._patched(
                NOTICE_TIMER_ONLY_WAITING
            )
            self._ask_again = self._notice_timer_only_waiting and self._patched(ASK_AGAIN)
            self._handover = self._ask_again and self._patched(HANDOVER_IN_ANSWER)
            self._notice_arms_timer = self._handover and self._patched(NOTICE_ARMS_TIMER)
            self._lanes = [
                asyncio.create_task(lane()) for lane in (self._deliver_lane, self._store_lane)
            ]
        while True:
            # a handler that moves the floor's deadline (a grant's time slot, a hold for
            # round robin's rotation) wakes the loop to arm the timer anew
            armed = self._floor_deadline()

            def woken(armed: datetime | None = armed) -> bool:
                return (
                    self._has_work()
                    or self._due_to_continue()
                    or self._closing()
                    or (self._rotation_grace and self._floor_deadline() != armed)
                )

            wake = self._next_wake()
            if self._timers_kept:  # a floor timer is due, or woken
                await self._wake.until(woken, wake, workflow.wait_condition)
            else:
                with contextlib.suppress(TimeoutError):  # a floor timer is due
                    await workflow.wait_condition(woken, timeout=wake)
            self._floor_tick()
            await self._grant_if_free()
            await self._flush()
            self._record_movements()
            if state.chat.closed and not self._has_work():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await workflow.wait_condition(lambda: not self._recording)
                if self._unrecorded():
                    continue  # what the account paid is in the ledger before the end
                if self._lanes and not self._lanes_idle():
                    continue  # what was accepted goes out and is stored before the end
                if not self._has_work():
                    return self._public()
            if self._history_is_long():
                # the updates that came with this activation run first; what is not
                # stored or published yet travels in the state, so a chat or an agent
                # that never goes quiet still continues as new
                await asyncio.sleep(0)
                if (
                    workflow.all_handlers_finished()
                    and not self._delivering
                    and not self._recording
                ):
                    workflow.continue_as_new(ChatStart(state=state))

    # ---- handlers ---------------------------------------------------------------------

    @workflow.update(name=ChatHandlers.OPEN)
    async def open(self) -> ChatPublic:
        """Return the chat once it is stored (update-with-start; a direct chat's second
        opening returns the same chat)."""
        self._updates += 1
        if self._patched("open-after-rooms"):
            # and once its members' agents know the room: a creator who tunes its
            # attention for the chat next finds the dialogue there
            await workflow.wait_condition(
                lambda: (
                    self.state.stored_version >= 0
                    and not self.state.pending_rooms
                    and not self._telling_rooms
                )
            )
        else:
            await workflow.wait_condition(lambda: self.state.stored_version >= 0)
        return self._public()

    @workflow.update(name=ChatHandlers.POST_MESSAGE)
    def post_message(self, post: PostMessage) -> PostAnswer:
        """Accept a message: assign its seq; storing and publishing follow in the next batch."""
        self._updates += 1
        state = self.state
        key = self._post_key(post)
        if key in state.posted_keys:
            return PostAnswer(**state.posted_keys[key].model_dump())
        seq = state.next_seq
        state.next_seq += 1
        chat = state.chat
        sender = PLATFORM if post.platform else post.sender
        recipients = self._members().others(sender)
        message = Message(
            message_id=message_id_for(chat.chat_id, seq),
            chat_id=chat.chat_id,
            seq=seq,
            from_=sender,
            to=recipients[0] if chat.type == "direct" and recipients else None,
            timestamp=workflow.now(),
            message_type=post.message_type,
            content=post.content,
            is_private=chat.type == "direct",
            correlation_id=post.correlation_id,
        )
        state.pending_messages.append(message)
        if post.trace:
            self._traces[message.message_id] = post.trace
        state.chat.last_seq = seq
        state.recent = [
            *state.recent[-19:],
            TranscriptLine(speaker=sender, text=post.content[:500]),
        ]
        self._outbox().emit(
            MessageSent(message=message),
            recipients,
            post.correlation_id,
            event_id=f"message.sent/{message.message_id}",
        )
        self._notices().posted(state.members, sender, seq, post.content, workflow.now())
        floor = self._floor()
        yielded = False
        answer = PostAnswer(message_id=message.message_id, seq=seq)
        if floor is not None and not post.platform:
            now = workflow.now()
            events = floor.posted(sender, post.content, now, post.model_seconds, post.tokens)
            if post.yield_floor and floor.state.current_speaker == sender:
                events += floor.release(sender, now)
            yielded = floor.state.current_speaker != sender
            if post.ask_again and yielded and self._ask_again:
                events += self._standing_request(floor, sender, now)
            self._floor_events(events, post.correlation_id)
            holder = floor.state.current_speaker
            if post.ask_again and self._handover and holder not in (None, sender):
                # granted in this handler: the poster's activity tells the holder now
                answer.handover_to = holder
                answer.handover = state.pending_notices.pop(holder, None)
                answer.message = message
        elif floor is not None:
            floor.posted(sender, post.content, workflow.now())  # counted: it is news
        answer.floor_yielded = yielded
        if key is not None:
            # what a retry with the key is answered: the post itself, never a hand-over
            state.posted_keys[key] = Posted(**answer.model_dump(include=set(Posted.model_fields)))
            if post.fingerprint:
                state.posted_bodies[key] = post.fingerprint
            while len(state.posted_keys) > POSTED_KEYS_KEPT:  # oldest first
                oldest = next(iter(state.posted_keys))
                del state.posted_keys[oldest]
                state.posted_bodies.pop(oldest, None)
        return answer

    @staticmethod
    def _standing_request(floor: Floor, sender: str, now: datetime) -> list[FloorEvent]:
        """The sender whose turn this post ended asks for the next one with it: a standing
        request, granted once someone has posted after it (a policy that grants by
        itself, in an open round; else it asks as anyone does, when it has news)."""
        if not floor.chooses_by_itself() or not floor.state.round_open:
            return []
        events = floor.request(sender, 0, "again, after the next message", now, standing=True)
        position = floor.position(sender)
        asked = ChatFloorRequested(
            chat_id=floor.chat_id, agent_id=sender, priority=0, position=position, standing=True
        )
        return [*events, asked]

    @staticmethod
    def _post_key(post: PostMessage) -> str | None:
        return f"{post.sender}/{post.idempotency_key}" if post.idempotency_key else None

    @post_message.validator
    def _validate_post(self, post: PostMessage) -> None:
        key = self._post_key(post)
        if key in self.state.posted_keys:
            first = self.state.posted_bodies.get(key)
            if first and post.fingerprint and first != post.fingerprint:
                raise ApplicationError(
                    "Idempotency-Key: already used for another message; a new message "
                    "needs a new key",
                    type="Invalid",
                    non_retryable=True,
                )
            return  # a retry of an accepted post: answered with its first answer
        self._check(self._members().check_post, post.sender, post.message_type, post.platform)
        if post.platform:
            if post.yield_floor:
                raise _conflict("yield: the platform holds no floor")
            return
        floor = self._floor()
        refusal = floor.post_refusal(post.sender) if floor is not None else None
        if refusal:
            raise _conflict(refusal)
        if post.yield_floor and floor is None:
            raise _conflict("yield: this chat has no floor control")
        if pending_weight(self.state.pending_messages) >= PENDING_BYTES_KEPT:
            raise ApplicationError(
                "the chat is still storing the messages before this one; retry",
                type="Busy",
                non_retryable=True,
            )

    @workflow.update
    async def add_member(self, change: MembershipChange) -> ChatPublic:
        """Invite an agent (admins and the owner), or join a public chat by oneself."""
        self._updates += 1
        role = change.role or Role.MEMBER
        self._members().add(change.target, role, workflow.now(), change.hosted)
        self._changed_membership(change.target, joined=True)
        self._outbox().emit(
            ChatMemberJoined(
                chat_id=self.state.chat.chat_id, agent_id=change.target, role=role, by=change.actor
            ),
            list(self.state.members),
            change.correlation_id,
        )
        return await self._stored()

    @add_member.validator
    def _validate_add(self, change: MembershipChange) -> None:
        self._check(
            self._members().check_add, change.actor, change.target, change.role, change.platform
        )

    @workflow.update
    async def remove_member(self, change: MembershipChange) -> ChatPublic:
        """Remove a member below one's role, or leave by oneself."""
        self._updates += 1
        self._drop(change.target, change.actor, change.correlation_id)
        return await self._stored()

    @remove_member.validator
    def _validate_remove(self, change: MembershipChange) -> None:
        self._check(self._members().check_remove, change.actor, change.target, change.platform)

    @workflow.update
    async def set_role(self, change: MembershipChange) -> ChatPublic:
        """Change a member's role (below the actor's own)."""
        self._updates += 1
        member = self.state.members[change.target]
        old = member.role
        member.role = change.role
        self._touch()
        self._outbox().emit(
            ChatRoleChanged(
                chat_id=self.state.chat.chat_id,
                agent_id=change.target,
                old_role=old,
                new_role=change.role,
                by=change.actor,
            ),
            list(self.state.members),
            change.correlation_id,
        )
        return await self._stored()

    @set_role.validator
    def _validate_set_role(self, change: MembershipChange) -> None:
        self._check(
            self._members().check_set_role,
            change.actor,
            change.target,
            change.role,
            change.platform,
        )

    @workflow.update
    async def close(self, request: CloseChat) -> ChatPublic:
        """Close the chat (the owner; either member of a direct chat): no more posts;
        members' rooms are released."""
        self._updates += 1
        state = self.state
        state.chat.closed = True
        workflow.upsert_search_attributes([STATUS.value_set("closed")])
        members = list(state.members)
        state.pending_rooms += [
            RoomChange(agent_id=m, chat_id=state.chat.chat_id, joined=False) for m in members
        ]
        self._touch()
        self._outbox().emit(
            ChatClosed(chat_id=state.chat.chat_id, by=request.actor),
            members,
            request.correlation_id,
        )
        return await self._stored()

    @close.validator
    def _validate_close(self, request: CloseChat) -> None:
        self._check(self._members().check_close, request.actor, request.platform)

    @workflow.update
    def mark_read(self, mark: ReadInput) -> int:
        """Move the reader's read watermark forward (never back)."""
        self._updates += 1
        state = self.state
        current = state.read_seq.get(mark.agent_id, 0)
        if mark.up_to_seq > current:
            state.read_seq[mark.agent_id] = mark.up_to_seq
            state.pending_reads[mark.agent_id] = mark.up_to_seq
            self._notice(mark.agent_id, read_up_to=mark.up_to_seq)
        return state.read_seq.get(mark.agent_id, 0)

    @mark_read.validator
    def _validate_read(self, mark: ReadInput) -> None:
        if self._role(mark.agent_id) is None:
            raise _not_found()
        if mark.up_to_seq > self.state.next_seq - 1:
            raise ApplicationError(
                f"up_to_seq {mark.up_to_seq} is past the last message ({self.state.next_seq - 1})",
                type="Invalid",
            )

    @workflow.signal(name=ChatHandlers.REQUEST_FLOOR)
    def request_floor(self, ask: FloorSignal) -> None:
        """A request to speak (RTS); many may arrive at once. The answer comes from
        ``floor_status`` or the requester's stream."""
        floor = self._floor()
        if floor is None or self.state.chat.closed or not can_post(self._role(ask.agent_id)):
            return  # the API refused these already; a late one changes nothing
        events = floor.request(ask.agent_id, ask.priority, ask.reason, workflow.now())
        position = floor.position(ask.agent_id)
        waits = floor.state.current_speaker is not None or not floor.chooses_by_itself()
        if position is not None and waits and self._patched(FLOOR_REQUESTED):
            asked = ChatFloorRequested(
                chat_id=floor.chat_id,
                agent_id=ask.agent_id,
                priority=ask.priority,
                position=position,
            )
            events = [*events, asked]
        self.state.floor_version += 1
        self._floor_events(events, ask.correlation_id)
        if floor.chooses_by_itself() and floor.needs_grant():
            granted = floor.grant_next(workflow.now(), self._member_order(), workflow.random())
            self._floor_events(granted, ask.correlation_id)

    @workflow.update
    async def floor_status(self, who: FloorCommand) -> FloorView:
        """The floor as ``who`` sees it, once a policy that grants by itself has granted."""
        self._updates += 1
        floor = self._floor()
        if floor.policy != "moderator":
            # the model may take a while; past the bound the caller learns its place
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not floor.needs_grant(), timeout=timedelta(seconds=15)
                )
        return floor.view(who.actor)

    @floor_status.validator
    def _validate_floor_status(self, who: FloorCommand) -> None:
        self._floor_member(who.actor, who.platform, post=True)

    @workflow.update(name=ChatHandlers.RELEASE_FLOOR)
    def release_floor(self, who: FloorCommand) -> FloorView:
        """Yield the floor, or withdraw a request to speak."""
        self._updates += 1
        floor = self._floor()
        try:
            events = floor.release(who.actor, workflow.now())
        except FloorError as exc:
            raise _conflict(str(exc)) from exc
        self._floor_events(events, who.correlation_id)
        return floor.view(who.actor)

    @release_floor.validator
    def _validate_release(self, who: FloorCommand) -> None:
        self._floor_member(who.actor, who.platform, post=False)
        floor = self._floor()
        if who.actor != floor.state.current_speaker and floor.position(who.actor) is None:
            raise _conflict(f"{who.actor} neither holds the floor nor waits for it")

    @workflow.update
    def handoff_floor(self, command: FloorCommand) -> FloorView:
        """The holder ends its turn and hands the floor to a named member."""
        self._updates += 1
        floor = self._floor()
        try:
            events = floor.handoff(
                command.actor, command.agent_id or "", self._speakers(), workflow.now()
            )
        except FloorError as exc:
            raise _conflict(str(exc)) from exc
        self._floor_events(events, command.correlation_id)
        return floor.view(command.actor)

    @handoff_floor.validator
    def _validate_handoff(self, command: FloorCommand) -> None:
        self._floor_member(command.actor, command.platform, post=True)
        refusal = self._floor().handoff_refusal(
            command.actor, command.agent_id or "", self._speakers()
        )
        if refusal:
            raise _conflict(refusal)

    def _speakers(self) -> list[str]:
        """The members whose role may speak, in the chat's order."""
        return [m for m in self._member_order() if can_post(self._role(m))]

    @workflow.update
    def stop_round(self, command: FloorCommand) -> FloorView:
        """The owner or an admin ends the round now (``chat.round_ended``, ``stopped``)."""
        self._updates += 1
        floor = self._floor()
        try:
            events = floor.stop(command.actor, workflow.now())
        except FloorError as exc:
            raise _conflict(str(exc)) from exc
        self._floor_events(events, command.correlation_id)
        return floor.view(command.actor)

    @stop_round.validator
    def _validate_stop(self, command: FloorCommand) -> None:
        self._reject_if_closed()
        if self._floor() is None:
            raise _conflict("this chat has no floor control")
        self._check(self._members().check_manage, command.actor, command.platform, "stop a round")
        if not self._floor().state.round_open:
            raise _conflict("the round has ended already: the next request opens a new one")

    @workflow.update
    async def deposit(self, command: ChatFundsCommand) -> BudgetView:
        """The owner moves tokens from its account into the chat's (through its own
        workflow, which checks its balance); its turns are paid from there."""
        self._updates += 1
        chat_id = self.state.chat.chat_id
        try:
            paid = await options.run(
                LedgerActivities.draw_chat_deposit,
                ChatDepositInput(
                    chat_id=chat_id,
                    owner=command.actor,
                    entry_id=command.entry_id,
                    amount=command.amount,
                    memo=command.memo,
                    correlation_id=command.correlation_id,
                ),
                **options.STORE,
            )
        except ActivityError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else "not paid"
            raise _conflict(f"the deposit was refused: {reason}") from exc
        floor = self._floor()
        assert floor is not None  # the validator saw one, and a floor is never taken away
        # what the ledger holds for this entry (the first request's, on a retry)
        if floor.deposit(command.entry_id, paid.entry.amount):
            self._account_event(ChatAccountFunded, command, command.entry_id)
        if paid.entry.amount != command.amount:  # the key was used for another deposit
            raise ApplicationError(
                f"Idempotency-Key: already used to deposit {paid.entry.amount}; "
                "a new deposit needs a new key",
                type="Invalid",
                non_retryable=True,
            )
        return floor.budget_view()

    @deposit.validator
    def _validate_deposit(self, command: ChatFundsCommand) -> None:
        self._validate_funds(command, "deposits into")

    @workflow.update
    async def withdraw(self, command: ChatFundsCommand) -> BudgetView:
        """The owner takes tokens back from the chat's account (never more than it holds);
        answers once the ledger has the movement."""
        self._updates += 1
        floor = self._floor()
        try:
            charge = floor.withdraw(command.actor, command.amount, command.memo, command.entry_id)
        except FloorError as exc:
            raise _answer(exc) from exc
        if charge is not None:  # None: a retry of one made before
            self._account_event(ChatAccountWithdrawn, command, charge.entry_id)
        # answered once the ledger has it (a retry: once nothing is left unrecorded)
        await workflow.wait_condition(lambda: not self._unrecorded())
        return floor.budget_view()

    @withdraw.validator
    def _validate_withdraw(self, command: ChatFundsCommand) -> None:
        self._validate_funds(command, "withdraws from")
        if refusal := self._floor().withdraw_refusal(command.amount, command.entry_id):
            raise _answer(refusal)

    def _validate_funds(self, command: ChatFundsCommand, verb: str) -> None:
        self._reject_if_closed()
        if self._floor() is None:
            raise _conflict("this chat has no floor control: only a floor's turns are paid")
        if command.platform or self._role(command.actor) != Role.OWNER:
            raise _forbidden(f"only the chat's owner {verb} its account, with its own")
        if command.amount <= 0:
            raise _conflict("the amount is a whole number of tokens from 1")

    @workflow.update
    def grant_floor(self, command: FloorCommand) -> FloorView:
        """A moderator hands the floor to an agent that asked for it."""
        self._updates += 1
        floor = self._floor()
        try:
            events = floor.grant(command.agent_id, workflow.now(), f"granted by {command.actor}")
        except FloorError as exc:
            raise _conflict(str(exc)) from exc
        self._floor_events(events, command.correlation_id)
        return floor.view(command.actor)

    @grant_floor.validator
    def _validate_grant(self, command: FloorCommand) -> None:
        role = self._floor_member(command.actor, command.platform, post=False)
        if RANK[role] < RANK[Role.MODERATOR]:
            raise _forbidden("only a moderator (or an admin, or the owner) grants the floor")
        floor = self._floor()
        if floor.policy != "moderator":
            raise _conflict(f"the {floor.policy} policy grants the floor by itself")
        if floor.state.current_speaker is not None:
            raise _conflict(f"the floor is held by {floor.state.current_speaker}")
        if command.agent_id is None or floor.position(command.agent_id) is None:
            raise _conflict(f"{command.agent_id} has not asked for the floor")

    @workflow.update
    async def set_floor(self, change: FloorSettingsChange) -> FloorView:
        """Change the speaker policy or the turn limits (owner and admins)."""
        self._updates += 1
        state = self.state
        if state.floor is None:
            state.floor = FloorState(settings=FloorSettings().model_copy(update=change.changes()))
        else:
            Floor(state.floor, state.chat.chat_id).apply(change.changes())
        state.chat.speaker_policy = state.floor.settings.speaker_policy
        state.floor_version += 1
        self._touch()
        self._outbox().emit(
            ChatFloorSettingsChanged(
                chat_id=state.chat.chat_id, settings=state.floor.settings, by=change.actor
            ),
            list(state.members),
            change.correlation_id,
        )
        await self._stored()
        return self._floor().view(change.actor)

    @set_floor.validator
    def _validate_set_floor(self, change: FloorSettingsChange) -> None:
        self._check(
            self._members().check_manage,
            change.actor,
            change.platform,
            "change the floor's settings",
        )

    @workflow.query
    def floor(self, who: str | None = None) -> FloorView | None:
        """The floor now: holder, turn end, messages left, the queue."""
        floor = self._floor()
        return floor.view(who) if floor is not None else None

    @workflow.signal(name=ChatHandlers.MEMBER_RETIRED)
    def member_retired(self, retired: MemberRetired) -> None:
        """A member retired: it leaves; an owner hands the chat to the next in rank."""
        if retired.agent_id not in self.state.members or self.state.chat.closed:
            return
        self._drop(retired.agent_id, retired.agent_id, retired.correlation_id)

    @workflow.query(name=ChatHandlers.TAIL)
    def tail(self, after_seq: int) -> list[Message]:
        """The accepted messages after ``after_seq`` not yet in the store: with the stored
        page, the history a reader was told about (read-your-writes)."""
        return [m for m in self.state.pending_messages if m.seq > after_seq]

    @workflow.query
    def chat(self) -> ChatPublic:
        """The live chat (MongoDB may lag one batch behind)."""
        return self._public()

    # ---- the main loop's work ---------------------------------------------------------

    def _has_work(self) -> bool:
        """Work for the main loop (with the lanes running, messages, events and notices are
        theirs)."""
        state = self.state
        floor = self._floor()
        lane_work = not self._lanes and bool(
            state.pending_messages or state.pending_events or state.pending_notices
        )
        return bool(
            lane_work
            or (state.pending_contexts and not state.pending_messages)
            or state.pending_rooms
            or state.pending_reads
            or state.version > state.stored_version
            or (self._floor_projection().behind and self._floor_projection_due())
            or (floor is not None and floor.needs_grant() and floor.policy != "moderator")
            or (not self._recording and bool(self._unrecorded()))
        )

    def _floor_projection_due(self) -> bool:
        """The floor's projection may be written now: not debounced (an older run), the
        chat is closing or about to continue as new, or the interval has passed."""
        if not self._floor_debounced or self._floor_stored_at is None:
            return True
        if self.state.chat.closed or self._history_is_long():
            return True
        interval = timedelta(seconds=self.state.projection_interval_seconds)
        return workflow.now() >= self._floor_stored_at + interval

    def _next_wake(self) -> timedelta | None:
        """The floor's next deadline, or the debounced floor projection coming due."""
        wakes = [w for w in (self._until_deadline(), self._until_floor_projection()) if w]
        return min(wakes) if wakes else None

    def _until_floor_projection(self) -> timedelta | None:
        if not self._floor_projection().behind or self._floor_projection_due():
            return None
        assert self._floor_stored_at is not None
        due = self._floor_stored_at + timedelta(seconds=self.state.projection_interval_seconds)
        return max(due - workflow.now(), timedelta(milliseconds=1))

    def _closing(self) -> bool:
        """A closed chat whose lanes have delivered and stored everything: time to end."""
        return bool(self._lanes) and self.state.chat.closed and self._lanes_idle()

    def _lanes_idle(self) -> bool:
        state = self.state
        return not (state.pending_messages or state.pending_events or state.pending_notices)

    # ---- the lanes (deliver-before-store) ---------------------------------------------

    async def _deliver_lane(self) -> None:
        """Publish what may go out, at once and in order, then tell the members' agents;
        a slower store or model never holds a delivery back."""
        state = self.state
        while True:
            if self._one_step and not self._store_behind:
                await self._wait_for_delivery()
                if not self._store_behind:
                    await self._deliver_batch()
                    continue
            await workflow.wait_condition(
                lambda: (
                    self._deliverable() > 0
                    or bool(state.pending_notices and not state.pending_messages)
                    or (self._one_step and not self._store_behind)
                )
            )
            if self._one_step and not self._store_behind:
                continue  # the store caught up: back to one step a batch
            if count := self._deliverable():
                await self._publish(count)
            if not state.pending_messages:  # else the store lane tells them, once a batch
                await self._send_notices()

    async def _wait_for_delivery(self) -> None:
        """Until events may go out, messages wait to be stored, or the notices are due
        (a timer only while notices alone wait for their interval)."""
        state = self.state

        def ready() -> bool:
            return (
                self._deliverable() > 0
                or bool(self._storable(0))
                or self._store_behind
                or (not state.pending_messages and self._notices_due())
            )

        def notice_waits() -> bool:
            return not state.pending_messages and bool(state.pending_notices)

        while not ready():
            waiting = not state.pending_messages
            if self._notice_timer_only_waiting:
                waiting = notice_waits()
            wait = self._until_notices_due() if waiting else None
            # a notice that comes while no timer runs goes round to arm one
            arms = self._notice_arms_timer and wait is None

            def woken(arms: bool = arms) -> bool:
                return ready() or (arms and notice_waits())

            if self._timers_kept:
                await self._notice_wake.until(woken, wait, workflow.wait_condition)
                continue
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(woken, timeout=wait)
        if self._history_is_long():
            # no new step: with none out, the main loop continues as new (a burst that
            # never pauses would keep one out for ever), and what waits travels along
            await workflow.wait_condition(lambda: False)

    def _notices_due(self) -> bool:
        """Notices wait, and may go: a floor change or a mention at once, new messages
        once the interval since the agents were last told has passed."""
        pending = self.state.pending_notices
        if not pending:
            return False
        if self._notices().urgent() or self._news_at_once():
            return True
        return self._until_notices_due() is None

    def _news_at_once(self) -> bool:
        """A floor chat tells its members of every batch at once where they ask for the
        floor when they hear news (``floor-chat-notices-at-once``): under a policy that
        takes standing requests, its hosted speakers have asked already, and news waits
        for the interval like anywhere else (``ask-again-with-the-post``)."""
        floor = self._floor()
        if not self._floor_notices_at_once or floor is None:
            return False
        return not (self._ask_again and floor.chooses_by_itself())

    def _until_notices_due(self) -> timedelta | None:
        """How long the waiting notices still wait (None: they may go now)."""
        if self._told_at is None:
            return None
        left = self._told_at + timedelta(seconds=self._notice_interval())
        left -= workflow.now()
        return left if left > timedelta(0) else None

    def _notice_interval(self) -> float:
        """How long news waits after the last told: in a group chat without floor
        control, where no agent acts on plain news (a hosted agent speaks there when
        mentioned, and a mention goes at once), the group interval; in a direct chat or
        under floor control, where a hosted agent acts on news, the notice interval. A
        chat started before the group interval existed keeps the one it had (the value
        comes from its start, so a replay takes the same path)."""
        state = self.state
        slow = state.group_notice_interval_seconds
        if slow is None or state.chat.type != "group" or state.floor is not None:
            return state.notice_interval_seconds
        return slow

    async def _deliver_batch(self) -> None:
        """Publish what may go out, store the messages it announces and, when that is
        every message waiting, send the members' notices: one activity. A store that did
        not answer in time leaves its batch to the store lane."""
        state = self.state
        outbox = self._outbox()
        events = outbox.head(self._deliverable())
        messages = self._storable(len(events))
        every_message = len(messages) == len(state.pending_messages)
        notices, some_wait = {}, False
        if every_message and self._notices_due():
            waiting = self._until_notices_due() is not None
            if self._ask_again and not self._news_at_once() and waiting:
                # a floor change or a mention goes now; news alone waits out the
                # interval (in a floor chat: the speakers are told of every turn, the
                # listeners once an interval)
                notices = self._notices().take_urgent()
                some_wait = bool(state.pending_notices)
            else:
                notices = self._notices().take()
                if not self._ask_again or any(n.new_messages for n in notices.values()):
                    # the interval runs from the last news told (a grant alone is none:
                    # the first message after it still goes at once)
                    self._told_at = workflow.now()
        self._delivering = True
        told = newest_told(notices)
        carriers = [self._traces.pop(m.message_id, None) for m in messages]
        carrier = next((c for c in carriers if c), None)
        try:
            with tracing.within(carrier):  # the batch joins its first post's trace
                result = await options.run(
                    DeliveryActivities.deliver_batch,
                    DeliverBatchInput(
                        events=events,
                        messages=messages,
                        members=list(state.members),
                        without_inbox=self._members().hosted(),
                        notices=notices,
                        last_seq_with_notices=True,
                        last_seq=told if told > self._raised_through else None,
                    ),
                    **options.STORE,
                )
        finally:
            self._delivering = False
        self._raised_through = max(self._raised_through, result.last_seq_raised)
        outbox.published(len(events))
        if not messages:
            return
        if not result.stored:
            self._store_behind = True  # the store lane has it now, and what follows
            return
        del state.pending_messages[: len(messages)]
        if not notices or some_wait:  # their notices still wait: the reading goes into them
            senders = {m.seq: m.from_ for m in messages}
            self._notices().read(state.members, senders, result.contexts)
        unread = [m for m in messages if m.seq not in result.contexts]
        if unread:
            self._read_late(unread)

    def _storable(self, publishing: int) -> list[Message]:
        """The first waiting messages (at most a batch) whose ``message.sent`` is out or in
        the first ``publishing`` events: nothing is stored before it is delivered."""
        state = self.state
        later = {
            event.payload["message"]["seq"]
            for event in state.pending_events[publishing:]
            if event.type == "message.sent"
        }
        batch: list[Message] = []
        for message in state.pending_messages[: state.max_batch]:
            if message.seq in later:
                break
            batch.append(message)
        return batch

    def _read_late(self, batch: list[Message]) -> None:
        """The processing step on the LLM queue for messages stored without its reading."""
        analysis = asyncio.create_task(self._analyse(batch, list(self.state.members)))
        analysis.add_done_callback(lambda done, batch=batch: self._late(done, batch))

    def _published_through(self, seq: int) -> bool:
        """No ``message.sent`` up to ``seq`` waits to be published any more."""
        for event in self.state.pending_events:
            if event.type == "message.sent" and event.payload["message"]["seq"] <= seq:
                return False
        return True

    def _deliverable(self) -> int:
        """How many of the first pending events (at most a batch) may go out now: all, up
        to an event about the chat itself that its projection does not show yet."""
        state = self.state
        count = 0
        for event in state.pending_events[: state.max_batch]:
            if event.type in STORE_GATED and state.version > state.stored_version:
                break
            count += 1
        return count

    async def _send_notices(self) -> None:
        """One signal per member whose attention changed, all at once, after the publish."""
        # taken, not copied: a notice changed while this one is sent goes in the next
        notices = self._notices().take()
        if not notices:
            return
        if self._patched("notices-by-activity"):
            # one activity signals them all: no signal event per member in this history,
            # and no workflow task here for each signal's answer
            await options.run(
                ChatActions.notify_members, NotifyMembersInput(notices=notices), **options.STORE
            )
            return

        await asyncio.gather(
            *(
                self._signal_agent(agent_id, AgentHandlers.DIALOGUE_NOTICE, notice)
                for agent_id, notice in notices.items()
            )
        )

    @staticmethod
    async def _signal_agent(agent_id: str, signal: str, arg) -> None:
        """Signal a member's agent workflow; one that has ended (retired) is not told."""
        handle = workflow.get_external_workflow_handle(agent_workflow_id(agent_id))
        try:
            await handle.signal(signal, arg)
        except Exception:  # the agent's workflow is gone (retired): nothing to tell
            workflow.logger.info("agent %s has no live workflow", agent_id)

    async def _store_lane(self) -> None:
        """Store each batch once it is delivered. The processing step reads it inside the
        store when it answers within the store's bound (one write, the common case); a
        batch it did not read in time goes to the LLM queue, and that reading is written
        onto the stored messages when it comes."""
        state = self.state
        while True:
            await workflow.wait_condition(
                lambda: bool(state.pending_messages) and (self._store_behind or not self._one_step)
            )
            batch = list(state.pending_messages[: state.max_batch])
            members = list(state.members)
            result = await options.run(
                StoreActivities.store_messages,
                StoreMessagesInput(messages=batch, members=members),
                **options.STORE,
            )
            del state.pending_messages[: len(batch)]
            self._context_notices(batch, result.contexts)
            # one signal per member a batch, after the batch went out: a burst does not
            # flood the members' agent workflows with one signal a message
            last = batch[-1].seq
            await workflow.wait_condition(lambda last=last: self._published_through(last))
            await self._send_notices()
            unread = [m for m in batch if m.seq not in result.contexts]
            if unread:
                if self._one_step:
                    self._read_late(unread)
                else:  # as first written (the same commands)
                    analysis = asyncio.create_task(self._analyse(unread, members))
                    analysis.add_done_callback(lambda done, batch=unread: self._late(done, batch))
            if not state.pending_messages:
                self._store_behind = False  # caught up: delivery stores again

    async def _analyse(self, batch: list[Message], members: list[str]) -> dict:
        """The processing step on the LLM queue; ``{}`` when it fails (never a hold-up)."""
        try:
            return await options.run(
                LlmActivities.analyse_messages,
                AnalyseMessagesInput(messages=batch, members=members),
                task_queue=self.state.llm_task_queue,
                **options.LLM,
            )
        except ActivityError:
            workflow.logger.warning("the processing step failed for a batch; stored without")
            return {}

    def _late(self, analysis: asyncio.Task, batch: list[Message]) -> None:
        if analysis.cancelled() or analysis.exception() is not None:
            return  # a run that continued as new: the batch stays stored without it
        contexts = analysis.result()
        if contexts:
            self.state.pending_contexts.update(contexts)
            self._context_notices(batch, contexts)

    def _context_notices(self, batch: list[Message], contexts: dict[int, MessageContext]) -> None:
        """A mention or an important message reaches the attention of the members who have
        not read it yet."""
        for message in batch:
            context = contexts.get(message.seq)
            if context is None:
                continue
            for agent_id in self.state.members:
                if agent_id == message.from_ or self.state.read_seq.get(agent_id, 0) >= message.seq:
                    continue
                mentioned = agent_id in context.mentions
                if mentioned or context.importance > 0:
                    self._notice(agent_id, mentioned=mentioned, last_seq=message.seq)
                    notice = self.state.pending_notices[agent_id]
                    notice.importance = max(notice.importance, context.importance)

    # ---- the main loop's stores -------------------------------------------------------

    async def _flush(self) -> None:
        state = self.state
        if self._lanes:
            await self._flush_projections()
            return
        while state.pending_messages:
            batch = state.pending_messages[: state.max_batch]
            result = await options.run(
                StoreActivities.store_messages,
                StoreMessagesInput(messages=batch, members=list(state.members)),
                **options.STORE,
            )
            del state.pending_messages[: len(batch)]
            self._read_contexts(batch, result.contexts)
            if state.pending_messages and self._patched(PUBLISH_DURING_BURST):
                # a burst keeps the store busy: what is stored goes out now, not at its end
                while ready := self._announceable(messages_only=True):
                    await self._publish(ready)
            if self._history_is_long():
                break  # a burst that never ends: the rest travels through continue-as-new
        await self._store_projections()
        await self._tell_rooms()
        if state.pending_notices and not state.pending_messages:
            # after their messages are stored and read: the notices carry what was read
            notices = self._notices().take()
            for agent_id, notice in notices.items():  # one after another, as first written
                await self._signal_agent(agent_id, AgentHandlers.DIALOGUE_NOTICE, notice)
        # never announce a message before it is stored: a post that came in while this
        # flush was past the store waits for the next round, and its events with it
        if not self._patched(PUBLISH_DURING_BURST):
            # the first runs held every event until no message was pending, so a burst
            # that never ended piled its events up in the state
            while state.pending_events and not state.pending_messages:
                await self._publish(len(state.pending_events))
            return
        while ready := self._announceable():
            await self._publish(ready)

    async def _flush_projections(self) -> None:
        """With the lanes running, the main loop stores the chat, the floor, the read
        marks and late readings, and tells agents of their rooms."""
        state = self.state
        await self._store_projections()
        if state.pending_contexts and not state.pending_messages:
            contexts, state.pending_contexts = state.pending_contexts, {}
            await options.run(
                StoreActivities.store_contexts,
                StoreContextsInput(chat_id=state.chat.chat_id, contexts=contexts),
                **options.STORE,
            )
        await self._tell_rooms()

    async def _store_projections(self) -> None:
        """The chat, its floor and its read marks, where they changed since last stored."""
        state = self.state
        chat, floor = self._chat_projection(), self._floor_projection()
        if chat.behind:
            version = chat.version
            await options.run(
                StoreActivities.store_chat, StoreChatInput(chat=self._public()), **options.STORE
            )
            chat.stored_up_to(version)
        if state.floor is not None and floor.behind and self._floor_projection_due():
            self._floor_stored_at = workflow.now()
            version = floor.version
            await options.run(
                StoreActivities.store_floor,
                StoreFloorInput(
                    chat_id=state.chat.chat_id, floor=state.floor.model_copy(deep=True)
                ),
                **options.STORE,
            )
            floor.stored_up_to(version)
        if state.pending_reads:
            reads, state.pending_reads = state.pending_reads, {}
            await options.run(
                StoreActivities.store_read_marks,
                StoreReadMarksInput(chat_id=state.chat.chat_id, read_seq=reads),
                **options.STORE,
            )

    async def _tell_rooms(self) -> None:
        """Each joining or leaving member's agent learns of its room."""
        state = self.state
        while state.pending_rooms:
            change = state.pending_rooms.pop(0)
            self._telling_rooms += 1
            try:
                await self._signal_agent(change.agent_id, AgentHandlers.ROOM_CHANGED, change)
            finally:
                self._telling_rooms -= 1

    def _announceable(self, *, messages_only: bool = False) -> int:
        """How many of the first pending events may go out now (at most a batch): those
        before the ``message.sent`` of the first message not yet stored. In the middle of
        storing (``messages_only``) only ``message.sent`` events: the others wait for the
        end of the flush, when what they announce (members, the floor) is stored too."""
        state = self.state
        stored_up_to = state.pending_messages[0].seq - 1 if state.pending_messages else None
        count = 0
        for event in state.pending_events[: state.max_batch]:
            if event.type != "message.sent":
                if messages_only:
                    break
            elif stored_up_to is not None and event.payload["message"]["seq"] > stored_up_to:
                break
            count += 1
        return count

    async def _publish(self, count: int) -> None:
        outbox = self._outbox()
        batch = outbox.head(min(count, self.state.max_batch))
        await options.run(
            EventActivities.publish_events,
            PublishEventsInput(events=batch, without_inbox=self._members().hosted()),
            **options.PUBLISH,
        )
        outbox.published(len(batch))

    # ---- the floor ------------------------------------------------------------------

    def _floor(self) -> Floor | None:
        floor = self.state.floor
        if floor is None:
            return None
        return Floor(floor, self.state.chat.chat_id, rotation_grace=self._rotation_grace)

    def _floor_member(self, actor: str, platform: bool, *, post: bool) -> Role:
        self._reject_if_closed()
        if self._floor() is None:
            raise _conflict("this chat has no floor control")
        role = self._actor_role(actor, platform)
        if role is None:
            raise _not_found()
        if post and not can_post(role):
            raise _forbidden(f"{a(role)} may not ask for the floor")
        return role

    def _floor_events(self, events: list[FloorEvent], correlation_id: str | None) -> None:
        """Publish the floor's events; when the floor came free, a policy that chooses by
        itself grants at once, in this handler, not after the I/O the main loop may be in."""
        if not events:
            return
        self.state.floor_version += 1
        for event in events:
            self._outbox().emit(event, list(self.state.members), correlation_id)
            if isinstance(event, ChatFloorGranted):
                self._notice(event.agent_id, floor="granted")
            elif isinstance(event, ChatFloorReleased) and event.agent_id:  # or expired
                self._notice(event.agent_id, floor="released")
            elif isinstance(event, ChatFloorRequested) and event.standing:
                # its own turn's answer told the hosted agent all this notice would (it
                # yielded, asked again, read what came before its post): one workflow
                # task less for each turn
                self.state.pending_notices.pop(event.agent_id, None)
        floor = self._floor()
        if floor.chooses_by_itself() and floor.needs_grant() and not self.state.chat.closed:
            granted = floor.grant_next(workflow.now(), self._member_order(), workflow.random())
            self._floor_events(granted, correlation_id)

    def _floor_deadline(self) -> datetime | None:
        floor = self._floor()
        return floor.next_deadline(workflow.now()) if floor is not None else None

    def _until_deadline(self) -> timedelta | None:
        due = self._floor_deadline()
        if due is None:
            return None
        return max(due - workflow.now(), timedelta(milliseconds=1))

    def _floor_tick(self) -> None:
        floor = self._floor()
        if floor is not None:
            self._floor_events(floor.expire_due(workflow.now()), None)

    def _member_order(self) -> list[str]:
        """The chat's fixed order (round robin goes round it): as members are listed."""
        return self._members().order()

    def _members(self) -> Membership:
        return Membership(self.state.members, self.state.chat)

    def _notices(self) -> Notices:
        return Notices(self.state.pending_notices, self.state.chat, self.state.floor is not None)

    @staticmethod
    def _check(check, *args) -> None:
        """Run a membership check; its refusal is the update's failure."""
        try:
            check(*args)
        except Refusal as refusal:
            raise _answer(refusal) from None

    async def _grant_if_free(self) -> None:
        floor = self._floor()
        if floor is None or not floor.needs_grant() or self.state.chat.closed:
            return
        if floor.chooses_by_itself():
            events = floor.grant_next(workflow.now(), self._member_order(), workflow.random())
            self._floor_events(events, None)
        elif floor.policy == "llm":
            await self._grant_by_model(floor)

    async def _grant_by_model(self, floor: Floor) -> None:
        candidates = [r.agent_id for r in sorted(floor.state.queue, key=lambda r: r.order)]
        pick, why = None, "llm policy"
        try:
            choice = await options.run(
                LlmActivities.choose_speaker,
                ChooseSpeakerInput(
                    topic=self.state.chat.topic or "",
                    transcript=self.state.recent,
                    candidates=candidates,
                ),
                task_queue=self.state.llm_task_queue,
                **options.LLM,
            )
            pick = valid_pick(choice.raw, floor.state.queue)
            if pick is None:
                why = f"fifo fallback: the model answered {choice.raw[:60]!r}"
        except ActivityError:
            why = "fifo fallback: the model failed"
        # the queue may have changed while the model thought
        if not floor.needs_grant():
            return
        if pick is None or floor.position(pick) is None:
            pick = min(floor.state.queue, key=lambda r: r.order).agent_id
        self._floor_events(floor.grant(pick, workflow.now(), why), None)

    # ---- the chat's account -------------------------------------------------------------

    def _account_event(
        self, kind: type[ChatAccountMoved], command: ChatFundsCommand, entry_id: str
    ) -> None:
        event = kind(
            chat_id=self.state.chat.chat_id,
            by=command.actor,
            amount=command.amount,
            balance=self.state.floor.budget.balance,
            entry_id=entry_id,
        )
        self._floor_events([event], command.correlation_id)

    def _unrecorded(self) -> list[Charge]:
        floor = self._floor()
        return floor.take_unrecorded() if floor is not None else []

    def _record_movements(self) -> None:
        """Send what the account paid to the ledger, one batch at a time, beside the main
        loop (a paid turn's grant and delivery never wait on it)."""
        if self._recording or not self._unrecorded() or not self._patched(CHAT_ACCOUNT):
            return
        self._recording = True
        self._recorder = asyncio.create_task(self._record(self._unrecorded()))

    async def _record(self, charges: list[Charge]) -> None:
        try:
            recorded = await options.run(
                LedgerActivities.record_chat_movements,
                ChatMovementsInput(
                    chat_id=self.state.chat.chat_id, charges=charges, at=workflow.now()
                ),
                **options.STORE,
            )
            self._floor().recorded(recorded)
        except ActivityError:  # the store was away past the bound: the loop tries again
            workflow.logger.warning("the chat's account movements are not recorded yet")
        finally:
            self._recording = False

    # ---- helpers ----------------------------------------------------------------------

    def _public(self) -> ChatPublic:
        chat = self.state.chat
        chat.members = self._members().ordered()
        chat.version = self.state.version
        return chat.model_copy(deep=True)

    def _role(self, agent_id: str) -> Role | None:
        return self._members().role(agent_id)

    def _actor_role(self, actor: str, platform: bool) -> Role | None:
        return self._members().actor_role(actor, platform)

    def _touch(self) -> int:
        self.state.version += 1
        return self.state.version

    async def _stored(self) -> ChatPublic:
        version = self.state.version
        await workflow.wait_condition(lambda: self.state.stored_version >= version)
        return self._public()

    def _changed_membership(self, agent_id: str, *, joined: bool) -> None:
        self.state.pending_rooms.append(
            RoomChange(
                agent_id=agent_id,
                chat_id=self.state.chat.chat_id,
                joined=joined,
                chat_type=self.state.chat.type,
            )
        )
        self._touch()

    def _drop(self, target: str, actor: str, correlation_id: str | None) -> None:
        state = self.state
        left, heir = self._members().drop(target)
        state.read_seq.pop(target, None)
        floor = self._floor()
        if floor is not None:
            self._floor_events(floor.leave(target, workflow.now()), correlation_id)
        self._changed_membership(target, joined=False)
        recipients = [*state.members, target]
        self._outbox().emit(
            ChatMemberLeft(chat_id=state.chat.chat_id, agent_id=target, by=actor),
            recipients,
            correlation_id,
        )
        if heir is not None:
            handed = ChatRoleChanged(
                chat_id=state.chat.chat_id,
                agent_id=heir.agent_id,
                old_role="previous",
                new_role=Role.OWNER,
                by=PLATFORM,
            )
            self._outbox().emit(handed, list(state.members), correlation_id)
        if not state.members:
            state.chat.closed = True

    def _read_contexts(self, batch: list[Message], contexts: dict[int, MessageContext]) -> None:
        """The processing step's mentions and importance reach the recipients' attention."""
        senders = {m.seq: m.from_ for m in batch}
        self._notices().read(self.state.members, senders, contexts)

    def _notice(self, agent_id: str, **what) -> None:
        """Gather what this batch tells one member's attention (``Notices.note``'s fields;
        one signal per batch)."""
        if agent_id in self.state.members:
            self._notices().note(agent_id, workflow.now(), **what)

    def _outbox(self) -> Outbox:
        return Outbox(
            self.state.pending_events, new_id=lambda: str(workflow.uuid4()), now=workflow.now
        )

    def _chat_projection(self) -> Projection:
        return Projection(self.state, "version", "stored_version")

    def _floor_projection(self) -> Projection:
        return Projection(self.state, "floor_version", "floor_stored_version")

    def _history_is_long(self) -> bool:
        return run_is_long(workflow.info(), self._updates, self.state)

    def _due_to_continue(self) -> bool:
        return (
            self._history_is_long()
            and workflow.all_handlers_finished()
            and not self._delivering
            and not self._recording
        )

    def _reject_if_closed(self) -> None:
        self._check(self._members().check_open)

    def _reject_if_direct(self) -> None:
        self._check(self._members().check_group)
