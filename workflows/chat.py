"""ChatWorkflow: one per chat (id ``chat/<chat_id>``), the single writer of its members,
roles and message order."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.store import StoreActivities
    from models.chats import (
        RANK,
        ChatPublic,
        Member,
        Message,
        Posted,
        Role,
        can_post,
        can_remove,
        can_set_role,
        message_id_for,
    )
    from models.events import EventEnvelope
    from models.workflow_io import (
        ChatStart,
        CloseChat,
        MemberRetired,
        MembershipChange,
        PostMessage,
        PublishEventsInput,
        ReadInput,
        RoomChange,
        StoreChatInput,
        StoreMessagesInput,
        StoreReadMarksInput,
    )
    from workflows import options
    from workflows.agent import AgentWorkflow, agent_workflow_id

PLATFORM = "platform"


def chat_workflow_id(chat_id: str) -> str:
    return f"chat/{chat_id}"


def _not_found() -> ApplicationError:
    # the same answer whether the chat does not exist or the caller may not see it
    return ApplicationError("chat not found", type="NotFound", non_retryable=True)


def _forbidden(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="Forbidden", non_retryable=True)


def _conflict(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="Conflict", non_retryable=True)


@workflow.defn
class ChatWorkflow:
    """Membership, roles and the message sequence of one chat.

    An accepted message gets its ``seq`` in the update handler and is durable in the
    workflow's history when the update returns; the main loop stores and publishes
    what accumulated in one batch, so a burst costs one activity per batch.
    """

    @workflow.init
    def __init__(self, start: ChatStart) -> None:
        self.state = start.state

    @workflow.run
    async def run(self, start: ChatStart) -> ChatPublic:
        """Serve the chat until it is closed, continuing as new when the history grows."""
        state = self.state
        if state.stored_version < 0 and not state.pending_events:
            members = list(state.members)
            self._emit("chat.created", {"chat": self._public().model_dump(mode="json")},
                       members, start.correlation_id)  # fmt: skip
            state.pending_rooms += [
                RoomChange(agent_id=m, chat_id=state.chat.chat_id, joined=True) for m in members
            ]
        while True:
            await workflow.wait_condition(self._has_work)
            await self._flush()
            if state.chat.closed and not self._has_work():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._has_work():
                    return self._public()
            if self._history_is_long() and not self._has_work():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._has_work():
                    workflow.continue_as_new(ChatStart(state=state))

    # ---- handlers ---------------------------------------------------------------------

    @workflow.update
    async def open(self) -> ChatPublic:
        """Return the chat once it is stored (update-with-start; a direct chat's second
        opening returns the same chat)."""
        await workflow.wait_condition(lambda: self.state.stored_version >= 0)
        return self._public()

    @workflow.update
    def post_message(self, post: PostMessage) -> Posted:
        """Accept a message: assign its seq; storing and publishing follow in the next batch."""
        state = self.state
        seq = state.next_seq
        state.next_seq += 1
        chat = state.chat
        sender = PLATFORM if post.platform else post.sender
        recipients = [m for m in state.members if m != sender]
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
        state.chat.last_seq = seq
        self._emit(
            "message.sent",
            {"message": message.model_dump(mode="json", by_alias=True)},
            recipients,
            post.correlation_id,
            event_id=f"message.sent/{message.message_id}",
        )
        return Posted(message_id=message.message_id, seq=seq)

    @post_message.validator
    def _validate_post(self, post: PostMessage) -> None:
        self._reject_if_closed()
        if post.platform:
            return
        role = self._role(post.sender)
        if role is None:
            raise _not_found()
        if post.message_type == "system":
            raise _forbidden("system messages come from the platform only")
        if not can_post(role):
            raise _forbidden(f"a {role} may read but not post")

    @workflow.update
    async def add_member(self, change: MembershipChange) -> ChatPublic:
        """Invite an agent (admins and the owner), or join a public chat by oneself."""
        role = change.role or Role.MEMBER
        now = workflow.now()
        self.state.members[change.target] = Member(agent_id=change.target, role=role, joined_at=now)
        self._changed_membership(change.target, joined=True)
        self._emit(
            "chat.member_joined",
            {"chat_id": self.state.chat.chat_id, "agent_id": change.target, "role": role,
             "by": change.actor},
            list(self.state.members),
            change.correlation_id,
        )  # fmt: skip
        return await self._stored()

    @add_member.validator
    def _validate_add(self, change: MembershipChange) -> None:
        self._reject_if_closed()
        self._reject_if_direct()
        if change.target in self.state.members:
            raise _conflict(f"{change.target} is already a member")
        if len(self.state.members) >= 500:
            raise _conflict("the chat is full (500 members)")
        role = change.role or Role.MEMBER
        actor = self._actor_role(change.actor, change.platform)
        joining_alone = change.actor == change.target and not change.platform
        if joining_alone and actor is None:
            if self.state.chat.join_rule == "public" and role == Role.MEMBER:
                return
            raise _not_found()
        if actor is None:
            raise _not_found()
        if not can_set_role(actor, None, role):
            raise _forbidden(f"a {actor} cannot invite as {role}")

    @workflow.update
    async def remove_member(self, change: MembershipChange) -> ChatPublic:
        """Remove a member below one's role, or leave by oneself."""
        self._drop(change.target, change.actor, change.correlation_id)
        return await self._stored()

    @remove_member.validator
    def _validate_remove(self, change: MembershipChange) -> None:
        self._reject_if_closed()
        actor = self._actor_role(change.actor, change.platform)
        if actor is None:
            raise _not_found()
        target = self._role(change.target)
        if target is None:
            raise ApplicationError(f"{change.target} is not a member", type="NotFound")
        if self.state.chat.type == "direct" and not change.platform:
            raise _conflict("a direct chat keeps its two members")
        if not change.platform and not can_remove(change.actor, actor, change.target, target):
            if change.actor == change.target:
                raise _conflict("the owner closes the chat rather than leaving it")
            raise _forbidden(f"a {actor} cannot remove a {target}")

    @workflow.update
    async def set_role(self, change: MembershipChange) -> ChatPublic:
        """Change a member's role (below the actor's own)."""
        member = self.state.members[change.target]
        old = member.role
        member.role = change.role
        self._touch()
        self._emit(
            "chat.role_changed",
            {"chat_id": self.state.chat.chat_id, "agent_id": change.target, "old_role": old,
             "new_role": change.role, "by": change.actor},
            list(self.state.members),
            change.correlation_id,
        )  # fmt: skip
        return await self._stored()

    @set_role.validator
    def _validate_set_role(self, change: MembershipChange) -> None:
        self._reject_if_closed()
        self._reject_if_direct()
        actor = self._actor_role(change.actor, change.platform)
        if actor is None:
            raise _not_found()
        target = self._role(change.target)
        if target is None:
            raise ApplicationError(f"{change.target} is not a member", type="NotFound")
        if change.role is None:
            raise ApplicationError("role is required", type="Invalid")
        if not can_set_role(actor, target, change.role):
            raise _forbidden(f"a {actor} cannot make a {target} {change.role}")

    @workflow.update
    async def close(self, request: CloseChat) -> ChatPublic:
        """Close the chat (the owner): no more posts; members' rooms are released."""
        state = self.state
        state.chat.closed = True
        members = list(state.members)
        state.pending_rooms += [
            RoomChange(agent_id=m, chat_id=state.chat.chat_id, joined=False) for m in members
        ]
        self._touch()
        self._emit("chat.closed", {"chat_id": state.chat.chat_id, "by": request.actor}, members,
                   request.correlation_id)  # fmt: skip
        return await self._stored()

    @close.validator
    def _validate_close(self, request: CloseChat) -> None:
        self._reject_if_closed()
        actor = self._actor_role(request.actor, request.platform)
        if actor is None:
            raise _not_found()
        if actor != Role.OWNER:
            raise _forbidden("only the owner closes the chat")

    @workflow.update
    def mark_read(self, mark: ReadInput) -> int:
        """Move the reader's read watermark forward (never back)."""
        state = self.state
        current = state.read_seq.get(mark.agent_id, 0)
        if mark.up_to_seq > current:
            state.read_seq[mark.agent_id] = mark.up_to_seq
            state.pending_reads[mark.agent_id] = mark.up_to_seq
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

    @workflow.signal
    def member_retired(self, retired: MemberRetired) -> None:
        """A member retired: it leaves; an owner hands the chat to the next in rank."""
        if retired.agent_id not in self.state.members or self.state.chat.closed:
            return
        self._drop(retired.agent_id, retired.agent_id, retired.correlation_id)

    @workflow.query
    def chat(self) -> ChatPublic:
        """The live chat (MongoDB may lag one batch behind)."""
        return self._public()

    # ---- the main loop's work ---------------------------------------------------------

    def _has_work(self) -> bool:
        state = self.state
        return bool(
            state.pending_messages
            or state.pending_events
            or state.pending_rooms
            or state.pending_reads
            or state.version > state.stored_version
        )

    async def _flush(self) -> None:
        state = self.state
        while state.pending_messages:
            batch = state.pending_messages[: state.max_batch]
            await workflow.execute_activity_method(
                StoreActivities.store_messages, StoreMessagesInput(messages=batch), **options.STORE
            )
            del state.pending_messages[: len(batch)]
        if state.version > state.stored_version:
            version = state.version
            await workflow.execute_activity_method(
                StoreActivities.store_chat, StoreChatInput(chat=self._public()), **options.STORE
            )
            state.stored_version = version
        if state.pending_reads:
            reads, state.pending_reads = state.pending_reads, {}
            await workflow.execute_activity_method(
                StoreActivities.store_read_marks,
                StoreReadMarksInput(chat_id=state.chat.chat_id, read_seq=reads),
                **options.STORE,
            )
        while state.pending_rooms:
            change = state.pending_rooms.pop(0)
            handle = workflow.get_external_workflow_handle_for(
                AgentWorkflow.run, agent_workflow_id(change.agent_id)
            )
            try:
                await handle.signal(AgentWorkflow.room_changed, change)
            except Exception:  # the agent's workflow is gone (retired): nothing to tell
                workflow.logger.info("agent %s has no live workflow", change.agent_id)
        while state.pending_events:
            batch = state.pending_events[: state.max_batch]
            await workflow.execute_activity_method(
                EventActivities.publish_events, PublishEventsInput(events=batch), **options.PUBLISH
            )
            del state.pending_events[: len(batch)]

    # ---- helpers ----------------------------------------------------------------------

    def _public(self) -> ChatPublic:
        chat = self.state.chat
        chat.members = sorted(
            self.state.members.values(), key=lambda m: (m.joined_at, -RANK[m.role], m.agent_id)
        )
        chat.version = self.state.version
        return chat.model_copy(deep=True)

    def _role(self, agent_id: str) -> Role | None:
        member = self.state.members.get(agent_id)
        return member.role if member else None

    def _actor_role(self, actor: str, platform: bool) -> Role | None:
        return Role.OWNER if platform else self._role(actor)

    def _touch(self) -> int:
        self.state.version += 1
        return self.state.version

    async def _stored(self) -> ChatPublic:
        version = self.state.version
        await workflow.wait_condition(lambda: self.state.stored_version >= version)
        return self._public()

    def _changed_membership(self, agent_id: str, *, joined: bool) -> None:
        self.state.pending_rooms.append(
            RoomChange(agent_id=agent_id, chat_id=self.state.chat.chat_id, joined=joined)
        )
        self._touch()

    def _drop(self, target: str, actor: str, correlation_id: str | None) -> None:
        state = self.state
        left = state.members.pop(target)
        state.read_seq.pop(target, None)
        self._changed_membership(target, joined=False)
        recipients = [*state.members, target]
        self._emit(
            "chat.member_left",
            {"chat_id": state.chat.chat_id, "agent_id": target, "by": actor},
            recipients,
            correlation_id,
        )
        if left.role == Role.OWNER and state.members:
            heir = max(
                state.members.values(), key=lambda m: (RANK[m.role], -m.joined_at.timestamp())
            )
            heir.role = Role.OWNER
            self._emit(
                "chat.role_changed",
                {"chat_id": state.chat.chat_id, "agent_id": heir.agent_id,
                 "old_role": "previous", "new_role": Role.OWNER, "by": PLATFORM},
                list(state.members),
                correlation_id,
            )  # fmt: skip
        if not state.members:
            state.chat.closed = True

    def _emit(
        self,
        event_type: str,
        payload: dict,
        recipients: list[str],
        correlation_id: str | None,
        *,
        event_id: str | None = None,
    ) -> None:
        self.state.pending_events.append(
            EventEnvelope(
                event_id=event_id or str(workflow.uuid4()),
                type=event_type,
                occurred_at=workflow.now(),
                correlation_id=correlation_id,
                payload=payload,
                recipients=recipients,
            )
        )

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() > self.state.continue_as_new_after_events
        )

    def _reject_if_closed(self) -> None:
        if self.state.chat.closed:
            raise _conflict("the chat is closed")

    def _reject_if_direct(self) -> None:
        if self.state.chat.type == "direct":
            raise _conflict("a direct chat keeps its two members")
