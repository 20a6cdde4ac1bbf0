"""The only package that imports aio_pika: topology, the publisher and consumers."""

from bus.consumer import consume
from bus.dead import DeadLetter, dead_letters, replay_dead_letters
from bus.inbox import Inbox, InboxBusy, InboxLost, open_inbox
from bus.publisher import EventBus, open_bus
from bus.revocations import watch_revocations
from bus.tail import TooSlow, WatchLost, tail_events
from bus.task_events import TaskEvents
from bus.topology import Topology

__all__ = [
    "DeadLetter",
    "dead_letters",
    "replay_dead_letters",
    "tail_events",
    "TooSlow",
    "WatchLost",
    "TaskEvents",
    "EventBus",
    "Inbox",
    "InboxBusy",
    "InboxLost",
    "Topology",
    "consume",
    "open_bus",
    "open_inbox",
    "watch_revocations",
]
