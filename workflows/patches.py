"""One patch marker a run where a workflow has many: ``Patches``.

``workflow.patched`` records a marker the first time a run asks for a patch, and the
SDK upserts the ``TemporalChangeVersion`` search attribute with it: two history events
and a visibility write on the server for each patch, in every new run (every life, every
continue-as-new). An agent's life asked for a dozen; its introduction paid for four or
five of them before it answered.

An era is one patch that stands for a fixed set of older ones. A run that records it
has every patch of the set; a run recorded before the era (no marker for it) asks for
each patch as it always did, and replays to the same commands. A patch added after an
era is not in its set: it is asked for by its own name until a later era takes it in.
"""

from __future__ import annotations

from temporalio import workflow


class Patches:
    """``workflow.patched`` through an era: ``patches(name)`` is True in a run that has
    the era, else whatever ``workflow.patched(name)`` says. The era is asked for once a
    run, at the first patch of its set the run asks for (the same point on replay)."""

    def __init__(self, era: str, covers: frozenset[str]) -> None:
        self._era_id = era
        self._covers = covers
        self._era: bool | None = None

    def __call__(self, patch_id: str) -> bool:
        if patch_id in self._covers:
            if self._era is None:
                self._era = workflow.patched(self._era_id)
            if self._era:
                return True
        return workflow.patched(patch_id)
