"""A chat's members and what each may do, and what a batch tells each member's attention:
pure classes beside ``Floor`` (no Temporal in here).

``ChatWorkflow`` keeps the state (``ChatState.members``, ``ChatState.pending_notices``)
and hands it to these to read and change; a refusal is a ``Refusal`` whose ``kind`` the
workflow turns into its answer (NotFound 404, Forbidden 403, Conflict 409, Invalid 422).
A caller who may not see the chat is told it is not found, whatever the reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from models.attention import DialogueNotice, fold_readings
from models.chats import (
    MAX_MEMBERS,
    RANK,
    ChatPublic,
    Member,
    MessageContext,
    Role,
    a,
    can_manage,
    can_post,
    can_remove,
    can_set_role,
)


class Refusal(Exception):
    """A change or a post a chat does not take; ``kind`` maps to an HTTP status."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def not_found() -> Refusal:
    # the same answer whether the chat does not exist or the caller may not see it
    return Refusal("chat not found", "NotFound")


def forbidden(reason: str) -> Refusal:
    return Refusal(reason, "Forbidden")


def conflict(reason: str) -> Refusal:
    return Refusal(reason, "Conflict")


class Membership:
    """The members of ``chat`` (the dict is the workflow's state, changed in place)."""

    def __init__(self, members: dict[str, Member], chat: ChatPublic) -> None:
        self.members = members
        self.chat = chat

    # ---- reads ----------------------------------------------------------------------

    def role(self, agent_id: str | None) -> Role | None:
        member = self.members.get(agent_id) if agent_id is not None else None
        return member.role if member else None

    def actor_role(self, actor: str, platform: bool) -> Role | None:
        """The platform (an admin) acts as an owner; anyone else by their role, if any."""
        return Role.OWNER if platform else self.role(actor)

    def ordered(self) -> list[Member]:
        """As members are listed: by joining, then rank, then id (round robin's order)."""
        return sorted(self.members.values(), key=lambda m: (m.joined_at, -RANK[m.role], m.agent_id))

    def order(self) -> list[str]:
        return [m.agent_id for m in self.ordered()]

    def others(self, sender: str) -> list[str]:
        return [m for m in self.members if m != sender]

    def hosted(self) -> list[str]:
        """The members that think in Agora: their inboxes get no copies."""
        return [a for a, m in self.members.items() if m.hosted]

    # ---- checks: each raises a Refusal, or returns ------------------------------------

    def check_open(self) -> None:
        if self.chat.closed:
            raise conflict(f"chat {self.chat.chat_id} is closed")

    def check_group(self) -> None:
        if self.chat.type == "direct":
            raise conflict("a direct chat keeps its two members")

    def check_visible(self, actor: str, platform: bool) -> Role:
        """The actor's role, or not found for one who is not a member."""
        role = self.actor_role(actor, platform)
        if role is None:
            raise not_found()
        return role

    def check_post(self, sender: str, message_type: str, platform: bool) -> None:
        """Who may post (the floor is the workflow's to check after this)."""
        if not platform and self.role(sender) is None:
            # the API asked no store: the answers its chat views give
            if self.chat.join_rule == "public" and not self.chat.closed:
                raise forbidden("join the chat to read it")
            raise not_found()
        self.check_open()
        if platform:
            return
        role = self.role(sender)
        if message_type == "system":
            raise forbidden("system messages come from the platform only")
        if not can_post(role):
            raise forbidden(f"{a(role)} may read but not post")

    def check_add(self, actor: str, target: str, role: Role | None, platform: bool) -> None:
        self.check_open()
        self.check_group()
        if target in self.members:
            raise conflict(f"{target} is already a member")
        if len(self.members) >= MAX_MEMBERS:
            raise conflict(f"the chat is full ({MAX_MEMBERS} members)")
        role = role or Role.MEMBER
        actor_role = self.actor_role(actor, platform)
        if actor == target and not platform and actor_role is None:  # joining alone
            if self.chat.join_rule != "public":
                raise not_found()
            if role not in (Role.MEMBER, Role.GUEST):
                raise forbidden("one joins a public chat by oneself as a member or a guest")
            return
        if actor_role is None:
            raise not_found()
        if not can_set_role(actor_role, None, role):
            raise forbidden(f"{a(actor_role)} cannot invite as {role}")

    def roles_of(self, actor: str, target: str, platform: bool) -> tuple[Role, Role]:
        """Both roles, or not found: for a caller who cannot see the chat, or a target
        not in it."""
        actor_role = self.check_visible(actor, platform)
        target_role = self.role(target)
        if target_role is None:
            raise Refusal(f"{target} is not a member", "NotFound")
        return actor_role, target_role

    def check_remove(self, actor: str, target: str, platform: bool) -> None:
        self.check_open()
        actor_role, target_role = self.roles_of(actor, target, platform)
        if self.chat.type == "direct" and not platform:
            raise conflict("a direct chat keeps its two members")
        if not platform and not can_remove(actor, actor_role, target, target_role):
            if actor == target:
                raise conflict("the owner closes the chat rather than leaving it")
            raise forbidden(f"{a(actor_role)} cannot remove {a(target_role)}")

    def check_set_role(self, actor: str, target: str, role: Role | None, platform: bool) -> None:
        self.check_open()
        self.check_group()
        actor_role, target_role = self.roles_of(actor, target, platform)
        if role is None:
            raise Refusal("role is required", "Invalid")
        if not can_set_role(actor_role, target_role, role):
            raise forbidden(f"{a(actor_role)} cannot make {a(target_role)} {role}")

    def check_close(self, actor: str, platform: bool) -> None:
        self.check_open()
        role = self.check_visible(actor, platform)
        if role != Role.OWNER and self.chat.type != "direct":
            raise forbidden("only the owner closes the chat")

    def check_manage(self, actor: str, platform: bool, what: str) -> None:
        """Owners and admins only (the floor's settings)."""
        self.check_open()
        self.check_group()
        if not can_manage(self.check_visible(actor, platform)):
            raise forbidden(f"only the owner and admins {what}")

    # ---- changes --------------------------------------------------------------------

    def add(self, agent_id: str, role: Role, at: datetime, hosted: bool = False) -> Member:
        member = Member(agent_id=agent_id, role=role, joined_at=at, hosted=hosted)
        self.members[agent_id] = member
        return member

    def drop(self, agent_id: str) -> tuple[Member, Member | None]:
        """Remove a member; when it was the owner, the next in rank (then the longest
        there) becomes the owner and is returned as the heir."""
        left = self.members.pop(agent_id)
        if left.role != Role.OWNER or not self.members:
            return left, None
        heir = max(self.members.values(), key=lambda m: (RANK[m.role], -m.joined_at.timestamp()))
        heir.role = Role.OWNER
        return left, heir


class Notices:
    """What the current batch tells each member's attention: one ``DialogueNotice`` per
    member, gathered until the chat sends them together (one signal a member a batch)."""

    def __init__(
        self, pending: dict[str, DialogueNotice], chat: ChatPublic, floor_control: bool
    ) -> None:
        self.pending = pending
        self.chat = chat
        self.floor_control = floor_control

    def note(
        self,
        agent_id: str,
        at: datetime,
        *,
        new_messages: int = 0,
        last_seq: int = 0,
        mentioned: bool = False,
        interacted: bool = False,
        floor: str | None = None,
        read_up_to: int | None = None,
    ) -> DialogueNotice:
        notice = self.pending.get(agent_id) or DialogueNotice(
            chat_id=self.chat.chat_id,
            chat_type=self.chat.type,
            at=at,
            floor_control=self.floor_control,
        )
        notice.new_messages += new_messages
        notice.last_seq = max(notice.last_seq, last_seq)
        notice.mentioned = notice.mentioned or mentioned
        notice.interacted = notice.interacted or interacted
        if floor is not None:
            notice.floor = floor
        if read_up_to is not None:
            notice.read_up_to = max(notice.read_up_to or 0, read_up_to)
        notice.at = at
        self.pending[agent_id] = notice
        return notice

    def posted(self, members: Iterable[str], sender: str, seq: int, content: str, at: datetime):
        """A message: the sender interacted; every other member has one more unread,
        and a mention when the text names it."""
        for member in members:
            if member == sender:  # what came before its post, it has read
                notice = self.note(member, at, interacted=True, last_seq=seq)
                notice.new_messages, notice.mentioned, notice.importance = 0, False, 0.0
            else:
                self.note(member, at, new_messages=1, last_seq=seq, mentioned=member in content)

    def read(
        self, members: Iterable[str], senders: dict[int, str], contexts: dict[int, MessageContext]
    ) -> None:
        """The processing step's mentions and importance reach the recipients' notices
        still waiting (``senders``: seq -> who sent it)."""
        members = set(members)
        waiting = {a: n for a, n in self.pending.items() if a in members}
        fold_readings(waiting, senders, contexts)

    def take(self) -> dict[str, DialogueNotice]:
        """The notices gathered so far (and none left)."""
        taken = dict(self.pending)
        self.pending.clear()
        return taken

    def urgent(self) -> bool:
        """A notice that must not wait: a floor change or a mention."""
        return any(n.urgent() for n in self.pending.values())

    def take_urgent(self) -> dict[str, DialogueNotice]:
        """The notices that must not wait (the rest wait for the notice interval)."""
        taken = {a: n for a, n in self.pending.items() if n.urgent()}
        for agent_id in taken:
            del self.pending[agent_id]
        return taken
