"""The floor of a group chat as a pure state machine (no Temporal in here).

``ChatWorkflow`` owns one ``Floor`` per chat with a speaker policy and turns what it
returns into published events; the property tests drive it directly.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta

from models.events import (
    ChatFloorExpired,
    ChatFloorGranted,
    ChatFloorReleased,
    ChatFloorWithdrawn,
    ChatRoundEnded,
    ChatRoundStarted,
    ChatTurnPaid,
    FloorEvent,
)
from models.floor import (
    RECENT_TURNS,
    BudgetView,
    Charge,
    ChatBudget,
    FloorRequest,
    FloorState,
    FloorView,
    QueuedRequest,
    TurnRecord,
    TurnSummary,
)
from models.market import chat_account
from models.termination import RoundSoFar, fired, idle_deadline, parse, texts
from workflows.policies import AUTOMATIC, SELECTORS, after

DEPOSITS_KEPT = 200
"""Deposit ids a chat remembers, so a retried deposit counts once."""


class FloorError(Exception):
    """A floor command that cannot apply; ``kind`` maps to an HTTP status."""

    def __init__(self, message: str, kind: str = "Conflict") -> None:
        super().__init__(message)
        self.kind = kind


class Floor:
    def __init__(self, state: FloorState, chat_id: str, *, rotation_grace: bool = False) -> None:
        self.state = state
        self.chat_id = chat_id
        self.rotation_grace = rotation_grace
        """Round robin waits its grace for the rotation (off: an older workflow run)."""

    # ---- reads ----------------------------------------------------------------------

    @property
    def policy(self) -> str:
        return self.state.settings.speaker_policy

    def position(self, agent_id: str) -> int | None:
        for index, request in enumerate(self._ordered(), start=1):
            if request.agent_id == agent_id:
                return index
        return None

    def post_refusal(self, agent_id: str) -> str | None:
        """Why ``agent_id`` may not post now, or None when it holds the floor."""
        holder = self.state.current_speaker
        if holder == agent_id:
            return None
        if holder is None:
            return "nobody holds the floor: request it first"
        return f"the floor is held by {holder}"

    def view(self, for_agent: str | None = None) -> FloorView:
        s = self.state
        left = s.settings.max_messages_per_turn - s.messages_in_turn if s.current_speaker else None
        return FloorView(
            chat_id=self.chat_id,
            speaker_policy=self.policy,
            current_speaker=s.current_speaker,
            turn_started_at=s.turn_started_at,
            turn_ends_at=s.turn_ends_at,
            messages_left=left,
            queue=[
                QueuedRequest(
                    agent_id=r.agent_id,
                    position=i,
                    priority=r.priority,
                    reason=r.reason,
                    requested_at=r.requested_at,
                    after_next_message=not self._may_grant(r),
                )
                for i, r in enumerate(self._ordered(), start=1)
            ],
            round=s.round,
            turns_in_round=s.turns_in_round,
            your_position=self.position(for_agent) if for_agent else None,
            you_hold_the_floor=for_agent is not None and for_agent == s.current_speaker,
            recent_turns=list(s.recent_turns),
            turn_summary=summarise(s.recent_turns),
            budget=self.budget_view(),
        )

    def budget_view(self) -> BudgetView | None:
        budget = self.state.budget
        if budget is None:
            return None
        return BudgetView(
            account=chat_account(self.chat_id),
            balance=budget.balance,
            price_per_1k_tokens=self.state.settings.price_per_1k_tokens,
            spent_in_round=budget.spent_in_round,
            spent=budget.spent,
            next_turn_needs=budget.next_turn_needs,
        )

    def needs_grant(self) -> bool:
        """The floor is free, the round open and someone waits (and round robin does not
        hold it for the next of its rotation)."""
        s = self.state
        return (
            s.current_speaker is None and s.round_open and bool(self.waiting()) and not s.held_until
        )

    def waiting(self) -> list[FloorRequest]:
        """The requests a policy may grant now, in arrival order (a standing request waits
        for a post after it)."""
        return [r for r in self._ordered() if self._may_grant(r)]

    def _may_grant(self, request: FloorRequest) -> bool:
        return request.after_post is None or self.state.posts > request.after_post

    def chooses_by_itself(self) -> bool:
        return self.policy in AUTOMATIC

    def next_deadline(self, now: datetime | None = None) -> datetime | None:
        """When a timer must fire: the end of the turn or the idle timeout (and an idle
        condition of the termination expression still ahead of ``now``)."""
        s = self.state
        deadlines = []
        if s.current_speaker and s.turn_ends_at:
            deadlines.append(s.turn_ends_at)
        if s.held_until:
            deadlines.append(s.held_until)
        idle = s.settings.idle_timeout_seconds
        if idle and s.round_open and s.last_activity_at and (s.current_speaker or self.waiting()):
            deadlines.append(s.last_activity_at + timedelta(seconds=idle))
        if s.settings.termination and s.round_open:
            due = idle_deadline(parse(s.settings.termination), self._so_far())
            # one that has passed without ending the round waits for the next post
            if due is not None and (now is None or due > now):
                deadlines.append(due)
        return min(deadlines) if deadlines else None

    # ---- commands -------------------------------------------------------------------

    def request(
        self,
        agent_id: str,
        priority: int,
        reason: str | None,
        now: datetime,
        *,
        standing: bool = False,
    ) -> list[FloorEvent]:
        """Queue a request to speak; a repeated one keeps its place and takes the new
        priority. ``standing``: asked with the member's own post, granted by no policy
        until someone posts after it (a plain request makes a standing one plain)."""
        s = self.state
        after_post = s.posts if standing else None
        events: list[FloorEvent] = []
        s.last_activity_at = now
        if not s.round_open:
            s.round += 1
            s.turns_in_round = 0
            s.messages_in_round = s.tokens_in_round = 0
            s.said_in_round = []
            if s.budget is not None:
                s.budget.spent_in_round = 0
            s.spoke_in_round, s.rotation = [], []
            s.round_open = True
            events.append(ChatRoundStarted(chat_id=self.chat_id, round=s.round, by=agent_id))
        if agent_id == s.current_speaker:
            return events
        if agent_id in s.spoke_in_round and agent_id not in s.rotation:
            s.rotation.append(agent_id)  # back for another turn
        s.held_until = None  # the next grant_next looks again
        for queued in s.queue:
            if queued.agent_id == agent_id:
                queued.priority = priority
                queued.reason = reason
                if queued.after_post is not None:
                    queued.after_post = after_post
                return events
        s.queue.append(
            FloorRequest(
                agent_id=agent_id,
                priority=priority,
                reason=reason,
                requested_at=now,
                order=s.next_order,
                after_post=after_post,
            )
        )
        s.next_order += 1
        return events

    def release(self, agent_id: str, now: datetime) -> list[FloorEvent]:
        """The holder yields, or a waiting agent withdraws its request."""
        s = self.state
        if agent_id == s.current_speaker:
            s.last_activity_at = now
            return self._end_turn("yielded", now)
        before = len(s.queue)
        s.queue = [r for r in s.queue if r.agent_id != agent_id]
        if len(s.queue) == before:
            raise FloorError(f"{agent_id} neither holds the floor nor waits for it")
        return [ChatFloorWithdrawn(chat_id=self.chat_id, agent_id=agent_id)]

    def posted(
        self,
        agent_id: str,
        content: str,
        now: datetime,
        model_seconds: float | None = None,
        tokens: int | None = None,
    ) -> list[FloorEvent]:
        """Count a post by the holder (and the model time it reports); the turn ends at its
        message limit or on the termination text, which also ends the round."""
        s = self.state
        s.posts += 1
        if agent_id != s.current_speaker:
            return []
        s.messages_in_turn += 1
        if model_seconds is not None:
            s.model_seconds_in_turn = (s.model_seconds_in_turn or 0.0) + model_seconds
        s.last_activity_at = now
        s.messages_in_round += 1
        s.tokens_in_round += tokens or 0
        payment, short = self._charge(agent_id, tokens or 0)
        if short is not None:  # the account could not pay all of it: the round ends
            return [*payment, *self._end_turn("budget", now, short=short)]
        if s.settings.termination:
            lowered = content.lower()
            said = [t for t in texts(parse(s.settings.termination)) if t in lowered]
            s.said_in_round = sorted({*s.said_in_round, *said})
        termination = s.settings.termination_text
        if termination and termination.lower() in content.lower():
            events = self._end_turn("termination", now, count_turn=True)
            if s.round_open:
                events += self._end_round("termination")
            return payment + events
        if self._fired(now):  # the turn ends, counted; its end ends the round
            return payment + self._end_turn("termination", now)
        if s.messages_in_turn >= s.settings.max_messages_per_turn:
            return payment + self._end_turn("message_limit", now)
        return payment

    def expire_due(self, now: datetime) -> list[FloorEvent]:
        """Fire what is due: the turn's time slot, then the idle timeout."""
        s = self.state
        events: list[FloorEvent] = []
        if s.current_speaker and s.turn_ends_at and now >= s.turn_ends_at:
            events += self._end_turn("expired", now)
        if s.held_until and now >= s.held_until:
            s.held_until = None  # the grace is over: grant_next passes over who is late
        idle = s.settings.idle_timeout_seconds
        if (
            idle
            and s.round_open
            and s.last_activity_at
            and now - s.last_activity_at >= timedelta(seconds=idle)
            and (s.current_speaker or self.waiting())
        ):
            if s.current_speaker:
                events += self._end_turn("idle", now, count_turn=False)
            if s.round_open:
                events += self._end_round("idle")
        if s.round_open and (found := self._fired(now)):
            if s.current_speaker:
                events += self._end_turn("termination", now, count_turn=False)
            if s.round_open:
                events += self._end_round("termination", found)
        return events

    def stop(self, by: str, now: datetime) -> list[FloorEvent]:
        """The owner (or an admin) ends the round now, whatever its conditions say."""
        s = self.state
        if not s.round_open:
            raise FloorError("the round has ended already: the next request opens a new one")
        events: list[FloorEvent] = []
        if s.current_speaker:
            events += self._end_turn("stopped", now)
        if s.round_open:
            events += self._end_round("stopped", [f"stopped by {by}"])
        return events

    def leave(self, agent_id: str, now: datetime) -> list[FloorEvent]:
        """A member left, was removed or retired: it loses the floor and its place."""
        s = self.state
        events: list[FloorEvent] = []
        s.queue = [r for r in s.queue if r.agent_id != agent_id]
        s.rotation = [a for a in s.rotation if a != agent_id]
        s.held_until = None
        if s.current_speaker == agent_id:
            events += self._end_turn("left", now)
        if s.last_speaker == agent_id:
            s.last_speaker = None
        return events

    def handoff_refusal(self, holder: str, to: str, members: Sequence[str]) -> str | None:
        """Why ``holder`` may not hand the floor to ``to`` now (None: it may). ``members``
        are the members that may speak."""
        s = self.state
        if s.current_speaker != holder:
            held = f"held by {s.current_speaker}" if s.current_speaker else "free"
            return f"only the holder hands the floor over: it is {held}"
        if to == holder:
            return "a holder does not hand the floor to itself"
        if to not in members:
            return f"{to} is not a member that may speak here"
        if not s.settings.handoff_to_any and self.position(to) is None:
            return f"{to} has not asked for the floor (this chat hands it only to requesters)"
        bound = s.settings.max_handoffs_in_row
        if s.handoff_pair == sorted((holder, to)) and s.handoffs_in_row >= bound:
            return (
                f"{bound} handoffs in a row between {holder} and {to}: yield the floor, "
                "and the policy chooses who speaks next"
            )
        return None

    def handoff(
        self, holder: str, to: str, members: Sequence[str], now: datetime
    ) -> list[FloorEvent]:
        """The holder ends its turn and names the next speaker (the same invariants as a
        grant: one holder, only members, in an open round)."""
        refusal = self.handoff_refusal(holder, to, members)
        if refusal:
            raise FloorError(refusal)
        s = self.state
        pair = sorted((holder, to))
        in_row = s.handoffs_in_row + 1 if s.handoff_pair == pair else 1
        s.last_activity_at = now
        events = self._end_turn("handoff", now)
        if not s.round_open:  # the turn it ended was the round's last
            return events
        events += self._give(to, now, f"handed over by {holder}", self._request_of(to))
        s.handoff_pair, s.handoffs_in_row = pair, in_row
        return events

    def grant(self, agent_id: str, now: datetime, reason: str) -> list[FloorEvent]:
        """Hand the floor to a waiting agent (by hand, or as the policy chose)."""
        s = self.state
        if s.current_speaker is not None:
            raise FloorError(f"the floor is held by {s.current_speaker}")
        if not s.round_open:
            raise FloorError("the round has ended: the next request to speak opens a new one")
        if all(r.agent_id != agent_id for r in s.queue):
            raise FloorError(f"{agent_id} has not asked for the floor")
        if short := self._unaffordable():  # the next turn could spend past the account
            return self._end_round("budget", [short])
        s.handoff_pair, s.handoffs_in_row = None, 0
        return self._give(agent_id, now, reason, self._request_of(agent_id))

    def _request_of(self, agent_id: str) -> FloorRequest | None:
        return next((r for r in self.state.queue if r.agent_id == agent_id), None)

    def _give(
        self, agent_id: str, now: datetime, reason: str, request: FloorRequest | None
    ) -> list[FloorEvent]:
        s = self.state
        s.queue = [r for r in s.queue if r.agent_id != agent_id]
        s.current_speaker = agent_id
        s.held_until = None
        if agent_id not in s.spoke_in_round:
            s.spoke_in_round.append(agent_id)
        s.turn_started_at = now
        s.turn_ends_at = now + timedelta(seconds=s.settings.turn_seconds)
        s.messages_in_turn = 0
        s.model_seconds_in_turn = None
        s.last_activity_at = now
        s.grant_reason = reason
        return [
            ChatFloorGranted(
                chat_id=self.chat_id,
                agent_id=agent_id,
                policy=self.policy,
                reason=reason,
                request_reason=request.reason if request else None,
                priority=request.priority if request else 0,
                round=s.round,
                turn=s.turns_in_round + 1,
                turn_ends_at=s.turn_ends_at.isoformat(),
                max_messages=s.settings.max_messages_per_turn,
            )
        ]

    def grant_next(
        self, now: datetime, members: Sequence[str], rng: random.Random
    ) -> list[FloorEvent]:
        """Grant by the chat's policy when the floor is free (moderator: nobody). Round
        robin holds a free floor for the grace for the next of its rotation that has not
        asked yet; past it, who is late is passed over and leaves the rotation."""
        if not self.needs_grant():
            return []
        s = self.state
        pick = SELECTORS[self.policy](self.waiting(), members, s.last_speaker, rng)
        if pick and (late := self._late(pick, members)):
            due = s.free_since + timedelta(seconds=s.settings.round_robin_grace_seconds)
            if now < due:
                s.held_until = due
                return []
            s.rotation = [a for a in s.rotation if a not in late]
        return self.grant(pick, now, f"{self.policy} policy") if pick else []

    def _late(self, pick: str, members: Sequence[str]) -> list[str]:
        """Round robin: the members of the rotation between the last speaker and ``pick``
        in the order, none of them asking (whom a grant to ``pick`` would pass over)."""
        s = self.state
        if (
            not self.rotation_grace
            or self.policy != "round_robin"
            or s.settings.round_robin_grace_seconds <= 0
            or s.free_since is None
            or not s.rotation
        ):
            return []
        asking = {r.agent_id for r in s.queue}
        late = []
        for member in after(members, s.last_speaker):
            if member == pick or member == s.last_speaker:
                break
            if member in s.rotation and member not in asking:
                late.append(member)
        return late

    def apply(self, changes: dict) -> None:
        """Change the settings named in ``changes`` (a None clears an optional limit)."""
        self.state.settings = self.state.settings.model_copy(update=changes)
        self.state.held_until = None  # the next grant_next looks again, by the new ones

    # ---- helpers --------------------------------------------------------------------

    def _ordered(self) -> list[FloorRequest]:
        return sorted(self.state.queue, key=lambda r: r.order)

    def _end_turn(
        self, why: str, now: datetime, *, count_turn: bool = True, short: str | None = None
    ) -> list[FloorEvent]:
        """End the holder's turn (and the round, where its end ends it: ``short`` says
        why the chat's account could not pay for the turn)."""
        s = self.state
        holder = s.current_speaker
        record = self._record(why, now, counted=count_turn)
        s.last_speaker = holder
        s.current_speaker = None
        s.free_since = now
        s.turn_started_at = None
        s.turn_ends_at = None
        s.messages_in_turn = 0
        if count_turn:
            s.turns_in_round += 1
        s.model_seconds_in_turn = None
        if s.budget is not None:
            s.budget.dearest_turn = max(s.budget.dearest_turn, s.budget.turn_cost)
            s.budget.turn_cost = 0
        kind = ChatFloorExpired if why == "expired" else ChatFloorReleased
        figures = {}
        if record is not None:
            figures = {
                "turn_seconds": record.seconds,
                "model_seconds": record.model_seconds,
                "overhead_seconds": record.overhead_seconds,
            }
        events: list[FloorEvent] = [
            kind(chat_id=self.chat_id, agent_id=holder, reason=why, round=s.round, **figures)
        ]
        max_turns = s.settings.max_turns
        if max_turns and s.round_open and s.turns_in_round >= max_turns:
            events += self._end_round("max_turns")
        if s.round_open and (found := self._fired(now)):
            events += self._end_round("termination", found)
        if s.round_open and (short := short or self._unaffordable()):
            events += self._end_round("budget", [short])
        return events

    # ---- the chat's account ---------------------------------------------------------

    def deposit(self, entry_id: str, amount: int) -> bool:
        """Count a deposit the ledger has recorded (the owner's tokens are in the chat's
        account); False for one counted before (a retry)."""
        budget = self.state.budget
        if budget is None:
            budget = self.state.budget = ChatBudget()
        if entry_id in budget.deposits:
            return False
        budget.deposits = [*budget.deposits[-(DEPOSITS_KEPT - 1) :], entry_id]
        budget.balance += amount
        budget.deposited += amount
        return True

    def withdraw(self, owner: str, amount: int, memo: str = "", key: str = "") -> Charge | None:
        """Take ``amount`` back to the owner's account (never more than the balance);
        None for a withdrawal made before with the same ``key`` (a retry)."""
        if refusal := self.withdraw_refusal(amount, key):
            raise refusal
        if key and key in self.state.budget.withdrawals:
            return None
        charge = self._move(owner, amount, "withdrawal", memo or "back to the owner")
        if key:
            budget = self.state.budget
            kept = list(budget.withdrawals.items())[-(DEPOSITS_KEPT - 1) :]
            budget.withdrawals = dict(kept) | {key: amount}
        return charge

    def withdraw_refusal(self, amount: int, key: str = "") -> FloorError | None:
        """Why the owner may not take ``amount`` back now (None: it may). A key used
        before answers as it did, for the same amount only."""
        budget = self.state.budget
        done = budget.withdrawals.get(key) if key and budget else None
        if done is not None:
            if done == amount:
                return None  # a retry
            return FloorError(
                f"Idempotency-Key: already used to withdraw {done}; "
                "a new withdrawal needs a new key",
                "Invalid",
            )
        balance = budget.balance if budget else 0
        if amount > balance:
            return FloorError(f"the chat's account holds {balance}: it cannot return {amount}")
        return None

    def take_unrecorded(self) -> list[Charge]:
        """The movements the ledger has yet to record (they stay until ``recorded``)."""
        return list(self.state.budget.unrecorded) if self.state.budget else []

    def recorded(self, entry_ids: Sequence[str]) -> None:
        if self.state.budget is not None:
            done = set(entry_ids)
            self.state.budget.unrecorded = [
                c for c in self.state.budget.unrecorded if c.entry_id not in done
            ]

    def _move(self, to: str, amount: int, kind: str, memo: str) -> Charge:
        budget = self.state.budget
        assert budget is not None and 0 < amount <= budget.balance
        budget.balance -= amount
        budget.movements += 1
        charge = Charge(
            entry_id=f"{kind.replace('_', '-')}/{self.chat_id}/{budget.movements}",
            to=to,
            amount=amount,
            kind=kind,
            memo=memo,
        )
        budget.unrecorded.append(charge)
        return charge

    def _charge(self, agent_id: str, tokens: int) -> tuple[list[FloorEvent], str | None]:
        """A turn's post pays its model tokens from the chat's account: the events of the
        payment, and why the round ends if the account held less than the cost."""
        s = self.state
        budget = s.budget
        if budget is None or tokens <= 0:
            return [], None
        cost = -(-tokens * s.settings.price_per_1k_tokens // 1000)
        paid = min(cost, budget.balance)
        events: list[FloorEvent] = []
        if paid:
            memo = f"round {s.round}, turn {s.turns_in_round + 1}: {tokens} model tokens"
            charge = self._move(agent_id, paid, "chat_turn", memo)
            budget.spent += paid
            budget.spent_in_round += paid
            budget.turn_cost += paid
            events.append(
                ChatTurnPaid(
                    chat_id=self.chat_id,
                    agent_id=agent_id,
                    round=s.round,
                    tokens=tokens,
                    amount=paid,
                    balance=budget.balance,
                    entry_id=charge.entry_id,
                )
            )
        if paid < cost:
            return events, (
                f"budget: {tokens} model tokens cost {cost}, the chat's account held {paid}"
            )
        return events, None

    def _unaffordable(self) -> str | None:
        """Why the next turn could spend past the chat's account (None: it cannot)."""
        budget = self.state.budget
        if budget is None or budget.balance >= budget.next_turn_needs:
            return None
        return (
            f"budget: the chat's account holds {budget.balance}, "
            f"a turn here may cost {budget.next_turn_needs}"
        )

    def _so_far(self) -> RoundSoFar:
        s = self.state
        return RoundSoFar(
            turns=s.turns_in_round,
            messages=s.messages_in_round,
            tokens=s.tokens_in_round,
            said=list(s.said_in_round),
            last_activity_at=s.last_activity_at,
        )

    def _fired(self, now: datetime) -> list[str] | None:
        """The termination expression's conditions that hold now (None: it does not)."""
        expression = self.state.settings.termination
        if not expression or not self.state.round_open:
            return None
        found = fired(parse(expression), self._so_far(), now)
        return [str(c) for c in found] if found is not None else None

    def _record(self, why: str, now: datetime, *, counted: bool) -> TurnRecord | None:
        """Keep the turn that ends now among the recent ones (a turn has a holder and a
        start; the newest ``RECENT_TURNS`` are kept)."""
        s = self.state
        if s.current_speaker is None or s.turn_started_at is None:
            return None
        seconds = max(0.0, (now - s.turn_started_at).total_seconds())
        model = s.model_seconds_in_turn
        record = TurnRecord(
            agent_id=s.current_speaker,
            round=s.round,
            turn=s.turns_in_round + (1 if counted else 0),
            started_at=s.turn_started_at,
            seconds=round(seconds, 4),
            model_seconds=round(model, 4) if model is not None else None,
            overhead_seconds=round(max(0.0, seconds - model), 4) if model is not None else None,
            messages=s.messages_in_turn,
            ended_by=why,
        )
        s.recent_turns = [*s.recent_turns[-(RECENT_TURNS - 1) :], record]
        return record

    def _end_round(self, why: str, conditions: list[str] | None = None) -> list[FloorEvent]:
        s = self.state
        s.round_open = False
        s.held_until = None
        ended = ChatRoundEnded(
            chat_id=self.chat_id,
            round=s.round,
            reason=why,
            turns=s.turns_in_round,
            conditions=conditions,
        )
        return [ended]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(turns: Sequence[TurnRecord]) -> TurnSummary | None:
    """p50 and p99 of the turns' durations and, where reported, their overhead."""
    if not turns:
        return None
    seconds = [t.seconds for t in turns]
    overhead = [t.overhead_seconds for t in turns if t.overhead_seconds is not None]
    return TurnSummary(
        turns=len(turns),
        seconds_p50=_pct(seconds, 0.5),
        seconds_p99=_pct(seconds, 0.99),
        overhead_seconds_p50=_pct(overhead, 0.5) if overhead else None,
        overhead_seconds_p99=_pct(overhead, 0.99) if overhead else None,
    )
