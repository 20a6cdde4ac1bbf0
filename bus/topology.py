"""Names of the exchanges and queues, derived from one prefix so tests never share them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topology:
    prefix: str = "agora"

    @property
    def events(self) -> str:
        """The durable topic exchange every domain event goes to (routing key = type)."""
        return f"{self.prefix}.events"

    @property
    def inbox(self) -> str:
        """The direct exchange that routes an event to its recipients' inboxes (key = agent id)."""
        return f"{self.prefix}.inbox"

    @property
    def dead_letters(self) -> str:
        """Where a consumer's rejected messages go."""
        return f"{self.prefix}.dead"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def task_events(self) -> str:
        """The topic exchange of A2A tasks' live events between API processes (key = task
        id)."""
        return f"{self.prefix}.a2a.tasks"

    def inbox_queue(self, agent_id: str) -> str:
        return f"{self.prefix}.inbox.{agent_id}"

    def stream_lock(self, agent_id: str) -> str:
        """An exclusive, empty queue held by the connection whose stream reads the agent's
        inbox: the broker refuses it to any other connection, on any node, and drops it
        when that connection goes (a killed API process frees its agents at once)."""
        return f"{self.prefix}.reading.{agent_id}"
