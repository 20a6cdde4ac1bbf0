"""The only package that imports aio_pika: topology, the publisher and consumers."""

from bus.consumer import consume
from bus.inbox import Inbox, InboxBusy, open_inbox
from bus.publisher import EventBus, open_bus
from bus.topology import Topology

__all__ = ["EventBus", "Inbox", "InboxBusy", "Topology", "consume", "open_bus", "open_inbox"]
