"""Temporal workflows: where Agora's decisions are made. Deterministic code only."""
