"""The only package that imports aio_pika: topology, the publisher and consumers."""

from bus.consumer import consume
from bus.publisher import EventBus, open_bus
from bus.topology import Topology

__all__ = ["EventBus", "Topology", "consume", "open_bus"]
