"""The offline reader and model answer the same on LangChain's async path as on its sync
one (the async path runs them on the event loop, not on a thread)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage, SystemMessage

from llm.models import OfflineChatModel
from llm.processing import ANALYSER

MEMBERS = {"ada-1": "Ada", "bob-2": "Bob", "me-4": None}
texts = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["hello @Ada", "could you help, bob-2?", "urgent: blocked now", "ok"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(texts, min_size=1, max_size=5))
async def test_the_reader_reads_a_batch_on_the_loop_as_it_reads_each_message(contents):
    items = [{"content": c, "sender": "me-4", "members": MEMBERS} for c in contents]
    assert await ANALYSER.abatch(items) == [ANALYSER.invoke(item) for item in items]


async def test_the_reader_still_reads_mentions_intent_and_importance():
    [read] = await ANALYSER.abatch(
        [{"content": "@Ada could you look, it is urgent?", "sender": "me-4", "members": MEMBERS}]
    )
    assert read == {"mentions": ["ada-1"], "importance": 1.0, "intent": "question"}


async def test_the_offline_model_answers_the_same_on_the_loop():
    model = OfflineChatModel()
    said = [SystemMessage("You are Ada, a careful reviewer."), HumanMessage("[bob] is it done?")]
    answer = await model.ainvoke(said)
    assert answer.content == model.invoke(said).content
    assert "is it done?" in answer.content and "careful reviewer" in answer.content
    pick = [HumanMessage("[ada] ask cy\nCandidates: bob, cy")]
    assert (await model.ainvoke(pick)).content == "cy"


async def test_the_failing_offline_model_fails_on_the_loop_too():
    with pytest.raises(ConnectionError):
        await OfflineChatModel(fail=True).ainvoke([HumanMessage("hi")])


async def test_the_reader_opens_a_run_for_callers_that_listen():
    from langchain_core.callbacks import AsyncCallbackHandler

    class Runs(AsyncCallbackHandler):
        def __init__(self) -> None:
            self.started: list[str] = []
            self.ended: list[dict] = []

        async def on_chain_start(self, serialized, inputs, *, name=None, **kwargs):
            self.started.append(name)

        async def on_chain_end(self, outputs, **kwargs):
            self.ended.append(outputs)

    runs = Runs()
    item = {"content": "hello @Ada", "sender": "me-4", "members": MEMBERS}
    [read] = await ANALYSER.abatch([item], {"callbacks": [runs]})
    assert runs.started == ["agora_message_analyser"]
    assert runs.ended == [read] and read["mentions"] == ["ada-1"]
    # without callbacks nothing listens, and the reading is the same
    assert await ANALYSER.abatch([item]) == [read]


async def test_a_batch_can_return_what_it_could_not_read():
    good = {"content": "ok", "sender": "me-4", "members": MEMBERS}
    read = await ANALYSER.abatch([good, {"sender": "me-4"}], return_exceptions=True)
    assert read[0]["intent"] == "statement"
    assert isinstance(read[1], KeyError)
    with pytest.raises(KeyError):
        await ANALYSER.abatch([good, {"sender": "me-4"}])
