"""The chat's membership and notices as pure classes (``workflows.membership``): who may
do what, who inherits a chat, and what a batch tells each member, without Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.chats import RANK, ChatPublic, Member, MessageContext, Role
from workflows.membership import Membership, Notices, Refusal

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def chat(kind="group", join_rule="invite", closed=False) -> ChatPublic:
    return ChatPublic(
        chat_id="g-1",
        type=kind,
        join_rule=join_rule,
        created_by="ann",
        created_at=T0,
        members=[],
        closed=closed,
    )


def members(**roles: Role) -> dict[str, Member]:
    return {
        agent: Member(agent_id=agent, role=role, joined_at=T0 + timedelta(seconds=i))
        for i, (agent, role) in enumerate(roles.items())
    }


def refusal(check, *args) -> str | None:
    try:
        check(*args)
    except Refusal as refused:
        return refused.kind
    return None


def test_who_may_post():
    room = Membership(members(ann=Role.OWNER, ben=Role.MEMBER, gus=Role.GUEST), chat())
    assert refusal(room.check_post, "ben", "text", False) is None
    assert refusal(room.check_post, "gus", "text", False) == "Forbidden"
    assert refusal(room.check_post, "ben", "system", False) == "Forbidden"
    assert refusal(room.check_post, "eve", "text", False) == "NotFound"  # not told it exists
    assert refusal(room.check_post, "platform", "system", True) is None


def test_a_public_chat_asks_a_stranger_to_join_and_a_closed_one_hides():
    public = Membership(members(ann=Role.OWNER), chat(join_rule="public"))
    assert refusal(public.check_post, "eve", "text", False) == "Forbidden"
    closed = Membership(members(ann=Role.OWNER), chat(join_rule="public", closed=True))
    assert refusal(closed.check_post, "eve", "text", False) == "NotFound"
    assert refusal(closed.check_post, "ann", "text", False) == "Conflict"


def test_joining_inviting_and_removing():
    room = Membership(members(ann=Role.OWNER, mo=Role.MODERATOR, ben=Role.MEMBER), chat())
    assert refusal(room.check_add, "eve", "eve", None, False) == "NotFound"  # invite only
    assert refusal(room.check_add, "ann", "ben", None, False) == "Conflict"  # already in
    assert refusal(room.check_add, "ben", "eve", None, False) == "Forbidden"
    assert refusal(room.check_add, "ann", "eve", Role.MODERATOR, False) is None
    assert refusal(room.check_remove, "ben", "mo", False) == "Forbidden"
    assert refusal(room.check_remove, "ben", "ben", False) is None  # leaving
    assert refusal(room.check_remove, "ann", "ann", False) == "Conflict"  # the owner closes
    assert refusal(room.check_remove, "ann", "zed", False) == "NotFound"
    direct = Membership(members(ann=Role.MEMBER, ben=Role.MEMBER), chat(kind="direct"))
    assert refusal(direct.check_add, "ann", "eve", None, False) == "Conflict"
    assert refusal(direct.check_close, "ben", False) is None  # either member closes it


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from([Role.ADMIN, Role.MODERATOR, Role.MEMBER, Role.GUEST]), max_size=8),
    st.randoms(use_true_random=False),
)
def test_a_chat_with_members_always_has_an_owner(roles, rnd):
    """Whoever leaves, in whatever order, the chat keeps one owner while anyone is in it:
    the owner's heir is the next in rank."""
    room = Membership(members(ann=Role.OWNER, **{f"a{i}": r for i, r in enumerate(roles)}), chat())
    while room.members:
        leaving = rnd.choice(sorted(room.members))
        before = {agent: m.role for agent, m in room.members.items()}
        left, heir = room.drop(leaving)
        if not room.members:
            break
        assert [m.role for m in room.members.values()].count(Role.OWNER) == 1
        if left.role == Role.OWNER:
            assert heir is not None and heir.role == Role.OWNER
            assert all(RANK[before[heir.agent_id]] >= RANK[before[a]] for a in room.members)
        else:
            assert heir is None


def test_round_robin_order_is_the_listing_order():
    room = Membership(members(ann=Role.OWNER, ben=Role.MEMBER, cy=Role.MEMBER), chat())
    assert room.order() == ["ann", "ben", "cy"]
    assert room.others("ben") == ["ann", "cy"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["ann", "ben", "cy"]), st.text(max_size=20)),
        min_size=1,
        max_size=30,
    )
)
def test_a_batch_of_posts_is_one_notice_a_member_that_counts_what_it_has_not_read(posts):
    pending: dict = {}
    notices = Notices(pending, chat(), floor_control=False)
    everyone = ["ann", "ben", "cy"]
    for seq, (sender, text) in enumerate(posts, start=1):
        notices.posted(everyone, sender, seq, text, T0)
    taken = notices.take()
    assert pending == {} and set(taken) == set(everyone)
    for member in everyone:
        notice = taken[member]
        # what a member's own post came after, it has read: only the later ones count
        own = [i for i, (s, _) in enumerate(posts) if s == member]
        after = posts[own[-1] + 1 :] if own else posts
        assert notice.new_messages == sum(1 for s, _ in after if s != member)
        assert notice.last_seq == len(posts)
        assert notice.interacted == bool(own)
        assert notice.mentioned == any(s != member and member in t for s, t in after)


def test_the_processing_step_raises_importance_and_mentions_of_waiting_notices():
    pending: dict = {}
    notices = Notices(pending, chat(), floor_control=True)
    notices.posted(["ann", "ben"], "ann", 1, "hello", T0)
    notices.read(
        ["ann", "ben"],
        {1: "ann"},
        {1: MessageContext(mentions=["ben"], importance=0.9, intent="question")},
    )
    assert pending["ben"].importance == pytest.approx(0.9) and pending["ben"].mentioned
    assert pending["ann"].importance == 0 and not pending["ann"].mentioned  # the sender
    assert pending["ben"].floor_control


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ann", "ben", "cy"]),
            st.lists(st.sampled_from(["ann", "ben", "cy"]), max_size=2, unique=True),
            st.floats(min_value=0, max_value=1),
        ),
        min_size=1,
        max_size=20,
    )
)
def test_a_reading_reaches_every_notice_but_its_senders(readings):
    """``fold_readings``, as the delivery activity applies it to the notices it sends:
    each member's notice takes the highest importance and any mention of the messages
    others sent; a member's own messages change nothing of its notice."""
    from models.attention import DialogueNotice, fold_readings

    notices = {
        m: DialogueNotice(chat_id="g-1", chat_type="group", at=T0) for m in ["ann", "ben", "cy"]
    }
    senders = {seq: sender for seq, (sender, _, _) in enumerate(readings, start=1)}
    contexts = {
        seq: MessageContext(mentions=mentions, importance=importance, intent="statement")
        for seq, (_, mentions, importance) in enumerate(readings, start=1)
    }
    fold_readings(notices, senders, contexts)
    for member, notice in notices.items():
        others = [(m, i) for s, m, i in readings if s != member]
        assert notice.importance == max((i for _, i in others), default=0.0)
        assert notice.mentioned == any(member in m for m, _ in others)


def test_a_floor_change_or_a_mention_goes_at_once_and_news_alone_waits():
    pending: dict = {}
    notices = Notices(pending, chat(), floor_control=True)
    notices.posted(["ann", "bob", "cy", "dee"], "ann", 7, "over to you, bob", T0)
    notices.note("bob", T0, floor="granted")
    notices.note("dee", T0, mentioned=True)
    assert notices.urgent()
    taken = notices.take_urgent()
    assert set(taken) == {"bob", "dee"} and taken["bob"].floor == "granted"
    assert taken["bob"].new_messages == 1 and taken["bob"].last_seq == 7  # the news rides along
    assert set(pending) == {"ann", "cy"} and not notices.urgent()  # these wait the interval
    assert notices.take_urgent() == {} and set(notices.take()) == {"ann", "cy"}
