"""Temporal activities: thin wrappers over the adapters (persistence, bus, llm)."""
