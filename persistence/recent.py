"""The last messages of each chat this worker delivered, held in memory, by seq.

A hosted agent's turn catches up on what was said since its dialogue context was saved.
On FerretDB v1 the store's read by chat and seq scans the whole collection (tens of
milliseconds at a few thousand messages, seconds at a hundred thousand), so the turn
reads here first: the worker that delivers a chat's batches (``deliver_batch``) and
stores them (the store lane) feeds this, and the agent's mind reads a run of seqs from
it. Accepted messages never change and a chat's seqs have no gaps, so a run held here
whole is exactly what the store holds; a run not held whole (another worker delivered
it, the process restarted, it was evicted) is read from the store as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from models.chats import Message


class RecentMessages:
    def __init__(self, per_chat: int = 200, chats: int = 5_000) -> None:
        self._per_chat = per_chat
        self._chats_kept = chats
        self._chats: OrderedDict[str, dict[int, Message]] = OrderedDict()

    def add(self, messages: Iterable[Message]) -> None:
        """Hold these (a repeat of a held seq changes nothing: accepted is final)."""
        for message in messages:
            held = self._chats.get(message.chat_id)
            if held is None:
                held = self._chats[message.chat_id] = {}
            held.setdefault(message.seq, message)
            self._chats.move_to_end(message.chat_id)
            if len(held) > self._per_chat:
                for seq in sorted(held)[: len(held) - self._per_chat]:
                    del held[seq]
        while len(self._chats) > self._chats_kept:
            self._chats.popitem(last=False)

    def since(self, chat_id: str, after_seq: int, through_seq: int) -> list[Message] | None:
        """Every message after ``after_seq`` through ``through_seq`` and on, as far as the
        run goes without a gap; None when any seq up to ``through_seq`` is not held."""
        held = self._chats.get(chat_id)
        if through_seq <= after_seq:
            through_seq = after_seq
        if held is None:
            return [] if through_seq == after_seq else None
        run: list[Message] = []
        seq = after_seq + 1
        while seq in held:
            run.append(held[seq])
            seq += 1
        return run if seq > through_seq else None
