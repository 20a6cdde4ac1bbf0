"""TaskWorkflow: one per task (id ``task/<task_id>``), a saga over the ledger.

Steps and their compensations: the reward goes from the poster into the task's escrow
(``escrow/<task>``); acceptance pays the bid price from escrow to the assignee
(``payment/<task>``) and returns the rest (``refund/<task>``); a second rejection or the
deadline returns the whole escrow (``refund/<task>``). Every ledger entry has a
deterministic id, so a worker killed between two steps resumes where it stopped and
never pays twice: tokens are neither lost nor duplicated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from activities.ledger import LedgerActivities
    from activities.tasks import TaskActivities
    from core.names import PLATFORM, TASK_WORKFLOW, TaskHandlers
    from core.temporal import STATUS
    from models.events import (
        EventPayload,
        TaskAccepted,
        TaskAssigned,
        TaskBidPlaced,
        TaskBidWithdrawn,
        TaskCancelled,
        TaskExpired,
        TaskPosted,
        TaskRejected,
        TaskSettled,
        TaskSubmitted,
    )
    from models.market import (
        FINAL,
        Bid,
        LedgerEntry,
        Review,
        Task,
        agent_account,
        escrow_account,
    )
    from models.workflow_io import (
        EscrowInput,
        PublishEventsInput,
        StoreReviewInput,
        StoreTaskInput,
        TaskActivityChange,
        TaskBrief,
        TaskChatInput,
        TaskCommand,
        TaskStart,
    )
    from workflows import options
    from workflows.outbox import Outbox, Projection

FLUSH_WHILE_FINISHING = "task-flush-while-finishing"
"""The patch that keeps a finished task storing while its last handlers complete."""


def _refuse(message: str, kind: str = "Conflict") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def best_bid(bids: list[Bid]) -> Bid | None:
    """The lowest price; between equal prices the better reputation, then the earlier bid."""
    if not bids:
        return None
    return min(bids, key=lambda b: (b.price, -b.reputation, b.at))


@workflow.defn(name=TASK_WORKFLOW)
class TaskWorkflow:
    @workflow.init
    def __init__(self, start: TaskStart) -> None:
        self.state = start.state
        self._correlation_id = start.correlation_id
        self._status_attribute = "open"

    @property
    def task(self) -> Task:
        return self.state.task

    @workflow.run
    async def run(self, start: TaskStart) -> Task:
        state = self.state
        if not state.escrowed and state.escrow_refused is None:
            try:
                await options.run(
                    TaskActivities.escrow_reward,
                    EscrowInput(
                        task_id=self.task.task_id,
                        poster=self.task.poster,
                        amount=self.task.reward,
                        correlation_id=self._correlation_id,
                    ),
                    **options.STORE,
                )
                state.escrowed = True
                self._emit(TaskPosted(**self._about(), reward=self.task.reward), self._parties())
            except ActivityError as exc:
                cause = exc.cause
                state.escrow_refused = (
                    cause.message if isinstance(cause, ApplicationError) else "escrow failed"
                )
                self.task.status = "cancelled"
                workflow.upsert_search_attributes([STATUS.value_set("cancelled")])
                await workflow.wait_condition(workflow.all_handlers_finished)
                return self.task  # nothing was posted, nothing moved
        while True:
            await self._flush()
            if self.task.status in FINAL and self._reviews_done():
                if workflow.patched(FLUSH_WHILE_FINISHING):
                    # a handler still running (a cancel settling its refund) waits for
                    # what it changed to be stored: keep storing until it is done
                    while not workflow.all_handlers_finished():
                        await workflow.wait_condition(
                            lambda: workflow.all_handlers_finished() or self._has_work()
                        )
                        await self._flush()
                else:
                    await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush()
                return self.task
            try:
                await workflow.wait_condition(self._has_work, timeout=self._next_timer())
            except TimeoutError:
                await self._on_timer()

    # ---- handlers ---------------------------------------------------------------------

    @workflow.update
    async def posted(self) -> Task:
        """Wait until the reward is in escrow and the task stored (update-with-start);
        insufficient funds: refused, nothing posted."""
        await workflow.wait_condition(
            lambda: self.state.escrow_refused is not None or self.state.stored_version >= 0
        )
        if self.state.escrow_refused is not None:
            raise _refuse(self.state.escrow_refused)
        return self.task

    @workflow.update
    async def place_bid(self, command: TaskCommand) -> Task:
        bid = Bid(
            agent_id=command.actor,
            price=command.price or 0,
            note=command.note,
            at=workflow.now(),
            reputation=command.reputation,
        )
        self.task.bids.append(bid)
        placed = TaskBidPlaced(**self._about(), agent_id=bid.agent_id, price=bid.price)
        self._emit(placed, [self.task.poster, bid.agent_id], command.correlation_id)
        return await self._stored()

    @place_bid.validator
    def _validate_bid(self, command: TaskCommand) -> None:
        self._ready()
        if self.task.status != "open":
            raise _refuse(f"the task is {self.task.status}: bidding is closed")
        if command.actor == self.task.poster:
            raise _refuse("the poster does not bid on its own task")
        if not command.qualified:
            raise _refuse(f"{command.actor} lacks the skills: {self.task.skills_required}")
        if command.price is None or not 0 < command.price <= self.task.reward:
            raise _refuse(f"price: at most the reward ({self.task.reward})", "Invalid")
        if any(b.agent_id == command.actor for b in self.task.bids):
            raise _refuse(f"{command.actor} has already bid")

    @workflow.update
    async def withdraw_bid(self, command: TaskCommand) -> Task:
        """The bidder takes its bid back while the task is open."""
        self.task.bids = [b for b in self.task.bids if b.agent_id != command.actor]
        self._emit(
            TaskBidWithdrawn(**self._about(), agent_id=command.actor),
            [self.task.poster, command.actor],
            command.correlation_id,
        )
        return await self._stored()

    @withdraw_bid.validator
    def _validate_withdraw(self, command: TaskCommand) -> None:
        self._ready()
        if self.task.status != "open":
            raise _refuse(f"the task is {self.task.status}: its bids are settled")
        if not any(b.agent_id == command.actor for b in self.task.bids):
            raise _refuse(f"{command.actor} has no bid on this task", "NotFound")

    @workflow.update
    async def cancel(self, command: TaskCommand) -> Task:
        """The poster withdraws an open task: the whole reward returns from escrow."""
        self.task.status = "cancelled"
        self._touch()
        self._emit(TaskCancelled(**self._about()), self._parties(), command.correlation_id)
        await self._settle(pay=False, correlation_id=command.correlation_id)
        return await self._stored()

    @cancel.validator
    def _validate_cancel(self, command: TaskCommand) -> None:
        self._ready()
        self._poster_only(command, "cancels")
        if self.task.status != "open":
            raise _refuse(f"the task is {self.task.status}: only an open task is cancelled")

    @workflow.update
    async def assign(self, command: TaskCommand) -> Task:
        bid = next(b for b in self.task.bids if b.agent_id == command.agent_id)
        self._assign(bid, command.correlation_id)
        return await self._stored()

    @assign.validator
    def _validate_assign(self, command: TaskCommand) -> None:
        self._ready()
        self._poster_only(command, "assigns")
        if self.task.status != "open":
            raise _refuse(f"the task is {self.task.status}, not open")
        if not any(b.agent_id == command.agent_id for b in self.task.bids):
            raise _refuse(f"{command.agent_id} did not bid")

    @workflow.update(name=TaskHandlers.SUBMIT)
    async def submit(self, command: TaskCommand) -> Task:
        self.task.status = "submitted"
        self.task.result = command.result
        self.task.submissions += 1
        self._touch()
        self._emit(
            TaskSubmitted(**self._about(), submissions=self.task.submissions),
            self._parties(),
            command.correlation_id,
        )
        return await self._stored()

    @submit.validator
    def _validate_submit(self, command: TaskCommand) -> None:
        self._ready()
        if command.actor != self.task.assignee:
            raise _refuse("only the assignee submits", "Forbidden")
        if self.task.status != "assigned":
            raise _refuse(f"the task is {self.task.status}: nothing to submit now")

    @workflow.update
    async def accept(self, command: TaskCommand) -> Task:
        self.task.status = "settled"
        self._touch()
        self._emit(TaskAccepted(**self._about()), self._parties(), command.correlation_id)
        await self._settle(pay=True, correlation_id=command.correlation_id)
        return await self._stored()

    @accept.validator
    def _validate_accept(self, command: TaskCommand) -> None:
        self._ready()
        self._poster_only(command, "accepts")
        if self.task.status != "submitted":
            raise _refuse(f"the task is {self.task.status}: nothing to accept")

    @workflow.update
    async def reject(self, command: TaskCommand) -> Task:
        self.task.rejections.append(command.reason or "")
        rejected = TaskRejected(
            **self._about(), reason=command.reason, rejections=len(self.task.rejections)
        )
        self._emit(rejected, self._parties(), command.correlation_id)
        if len(self.task.rejections) >= 2:
            self.task.status = "refunded"
            self._touch()
            await self._settle(pay=False, correlation_id=command.correlation_id)
        else:
            self.task.status = "assigned"  # one resubmission
            self._touch()
            if self.state.chat_opened:
                await self._note(f"Rejected: {command.reason}. One resubmission.", "rejected")
                await self._task_activity(True)
        return await self._stored()

    @reject.validator
    def _validate_reject(self, command: TaskCommand) -> None:
        self._ready()
        self._poster_only(command, "rejects")
        if self.task.status != "submitted":
            raise _refuse(f"the task is {self.task.status}: nothing to reject")
        if not command.reason:
            raise _refuse("reason: say why", "Invalid")

    @workflow.update
    async def review(self, command: TaskCommand) -> Task:
        subject = self.task.assignee if command.actor == self.task.poster else self.task.poster
        assert subject is not None
        self.task.reviewed_by.append(command.actor)
        self._touch()
        await options.run(
            TaskActivities.store_review,
            StoreReviewInput(
                review=Review(
                    task_id=self.task.task_id,
                    reviewer=command.actor,
                    subject=subject,
                    rating=command.rating or 0,
                    comment=command.comment,
                    at=workflow.now(),
                )
            ),
            **options.STORE,
        )
        return await self._stored()

    @review.validator
    def _validate_review(self, command: TaskCommand) -> None:
        self._ready()
        if self.task.status not in ("settled", "refunded"):
            raise _refuse(f"the task is {self.task.status}: reviews come after settlement")
        if command.actor not in (self.task.poster, self.task.assignee):
            raise _refuse("only the poster and the assignee review", "Forbidden")
        if command.actor in self.task.reviewed_by:
            raise _refuse(f"{command.actor} has already reviewed this task")
        if command.rating is None or not 1 <= command.rating <= 5:
            raise _refuse("rating: 1 to 5", "Invalid")

    @workflow.query
    def current(self) -> Task:
        return self.task

    # ---- the saga -----------------------------------------------------------------------

    def _assign(self, bid: Bid, correlation_id: str | None) -> None:
        self.task.status = "assigned"
        self.task.assignee = bid.agent_id
        self.task.price = bid.price
        self._touch()
        # the agreed price is the poster's and the assignee's; the other bidders learn who
        self._emit(
            TaskAssigned(**self._about(), agent_id=bid.agent_id, price=bid.price),
            [self.task.poster, bid.agent_id],
            correlation_id,
        )
        others = [p for p in self._parties() if p not in (self.task.poster, bid.agent_id)]
        if others:
            self._emit(TaskAssigned(**self._about(), agent_id=bid.agent_id), others, correlation_id)

    async def _settle(self, *, pay: bool, correlation_id: str | None) -> None:
        """Pay the assignee and refund the rest (accepted), or refund it all. Each entry
        has its own id; a crash between them resumes and writes only what is missing."""
        task, escrow = self.task, escrow_account(self.task.task_id)
        paid = (task.price or 0) if pay else 0
        moves = []
        if paid:
            moves.append(("payment", agent_account(task.assignee or ""), paid))
        if task.reward - paid:
            moves.append(("refund", agent_account(task.poster), task.reward - paid))
        for kind, credit, amount in moves:
            entry_id = f"{kind}/{task.task_id}"
            if entry_id in self.state.settled_entries:
                continue
            await options.run(
                LedgerActivities.record,
                LedgerEntry(
                    entry_id=entry_id,
                    debit=escrow,
                    credit=credit,
                    amount=amount,
                    kind=kind,
                    task_id=task.task_id,
                    at=workflow.now(),
                ),
                **options.STORE,
            )
            self.state.settled_entries.append(entry_id)
        self._emit(
            TaskSettled(**self._about(), paid=paid, refunded=task.reward - paid),
            self._parties(),
            correlation_id,
        )
        if task.assignee:
            await options.run(TaskActivities.recompute_reputation, task.assignee, **options.STORE)

    async def _on_timer(self) -> None:
        task, now = self.task, workflow.now()
        if task.status == "open" and task.bidding_closes_at and now >= task.bidding_closes_at:
            bid = best_bid(task.bids)
            if bid is not None:
                self._assign(bid, None)
            else:
                task.bidding_closes_at = None  # no bid: stay open until the deadline
                self._touch()
        if task.status not in FINAL and now >= task.deadline:
            task.status = "expired"
            self._touch()
            self._emit(TaskExpired(**self._about()), self._parties())
            await self._settle(pay=False, correlation_id=None)

    def _next_timer(self) -> timedelta | None:
        try:
            return self._until_next_moment()
        except OverflowError:  # a time past year 9999 (a task posted before the horizon)
            return None

    def _until_next_moment(self) -> timedelta | None:
        task, now = self.task, workflow.now()
        if task.status in FINAL:
            end = task.deadline + timedelta(seconds=self.state.review_window_seconds)
            return max(end - now, timedelta(0)) if not self._reviews_done() else None
        moments = [task.deadline]
        if task.status == "open" and task.bidding_closes_at:
            moments.append(task.bidding_closes_at)
        return max(min(moments) - now, timedelta(0))

    def _reviews_done(self) -> bool:
        task = self.task
        if task.status in ("expired", "cancelled") or task.assignee is None:
            return True
        try:
            end = task.deadline + timedelta(seconds=self.state.review_window_seconds)
        except OverflowError:
            end = datetime.max.replace(tzinfo=UTC)
        window_over = workflow.now() >= end
        return window_over or {task.poster, task.assignee} <= set(task.reviewed_by)

    # ---- the main loop's work -------------------------------------------------------------

    def _has_work(self) -> bool:
        return self._projection().behind or bool(self._outbox())

    async def _flush(self) -> None:
        state, task = self.state, self.task
        if task.status != self._status_attribute:  # operators filter by AgoraStatus
            workflow.upsert_search_attributes([STATUS.value_set(task.status)])
            self._status_attribute = task.status
        if task.assignee and not state.chat_opened and task.status in ("assigned", "submitted"):
            task.chat_id = await options.run(
                TaskActivities.open_task_chat,
                TaskChatInput(
                    task_id=task.task_id,
                    title=task.title,
                    poster=task.poster,
                    assignee=task.assignee,
                    task_queue=state.task_queue,
                    llm_task_queue=state.llm_task_queue,
                ),
                **options.STORE,
            )
            state.chat_opened = True
            brief = (
                f"Task: {task.title}\n{task.description}\nAgreed price: {task.price} "
                f"tokens. Deadline: {task.deadline:%Y-%m-%d %H:%M} UTC."
            )
            await self._note(brief, "brief")
            await self._task_activity(True)
            self._touch()
        if task.status in FINAL and state.chat_opened and not state.activity_cleared:
            await self._task_activity(False)
            state.activity_cleared = True
        projection = self._projection()
        while projection.behind:
            version = projection.version
            await options.run(
                TaskActivities.store_task,
                StoreTaskInput(task=task.model_copy(deep=True)),
                **options.STORE,
            )
            projection.stored_up_to(version)
        if outbox := self._outbox():
            await options.run(
                EventActivities.publish_events,
                PublishEventsInput(events=outbox.take()),
                **options.PUBLISH,
            )

    def _outbox(self) -> Outbox:
        return Outbox(
            self.state.pending_events, new_id=lambda: str(workflow.uuid4()), now=workflow.now
        )

    def _projection(self) -> Projection:
        return Projection(self.state, "task.version", "stored_version")

    async def _note(self, text: str, what: str) -> None:
        task = self.task
        await options.run(
            TaskActivities.post_task_brief,
            TaskBrief(
                task_id=task.task_id,
                chat_id=task.chat_id or "",
                text=text,
                update_id=f"task-note/{task.task_id}/{what}",
            ),
            **options.STORE,
        )

    async def _task_activity(self, active: bool) -> None:
        change = TaskActivityChange(
            agent_id=self.task.assignee or "",
            task_id=self.task.task_id,
            active=active,
            chat_id=self.task.chat_id,
        )
        await options.run(TaskActivities.set_task_activity, change, **options.STORE)

    async def _stored(self) -> Task:
        version = self.task.version
        await workflow.wait_condition(lambda: self.state.stored_version >= version)
        return self.task

    # ---- helpers --------------------------------------------------------------------------

    def _ready(self) -> None:
        if not self.state.escrowed:
            raise _refuse("the task is not posted")

    def _poster_only(self, command: TaskCommand, verb: str) -> None:
        if command.actor not in (self.task.poster, PLATFORM):
            raise _refuse(f"only the poster {verb}", "Forbidden")

    def _parties(self) -> list[str]:
        parties = [self.task.poster]
        parties += [b.agent_id for b in self.task.bids if b.agent_id not in parties]
        return parties

    def _touch(self) -> None:
        self.task.version += 1

    def _about(self) -> dict[str, str]:
        """What every task event says first: the task, its title, its status now."""
        return {"task_id": self.task.task_id, "title": self.task.title, "status": self.task.status}

    def _emit(
        self,
        payload: EventPayload,
        recipients: Sequence[str] = (),
        correlation_id: str | None = None,
        *,
        event_id: str | None = None,
    ) -> None:
        self._touch()
        correlation_id = correlation_id or self._correlation_id
        self._outbox().emit(payload, recipients, correlation_id, event_id=event_id)
