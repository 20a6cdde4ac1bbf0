"""The worker process: builds the adapters once and runs every workflow and activity."""

from workers.registry import ACTIVITY_CLASSES, WORKFLOWS, build_worker, build_workers

__all__ = ["ACTIVITY_CLASSES", "WORKFLOWS", "build_worker", "build_workers"]
