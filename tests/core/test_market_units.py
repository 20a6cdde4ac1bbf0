"""Pure marketplace rules: the skill tree, the best bid, the reputation score."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from models.market import Bid, Skill, reputation_score, satisfies
from workflows.task import best_bid

TREE = [
    Skill(name="data_analysis"),
    Skill(name="statistics", parent="data_analysis"),
    Skill(name="bayes", parent="statistics"),
    Skill(name="poetry"),
]


def test_a_skill_or_any_descendant_satisfies_a_requirement():
    assert satisfies({"statistics"}, ["data_analysis"], TREE)
    assert satisfies({"bayes"}, ["data_analysis"], TREE)
    assert not satisfies({"data_analysis"}, ["statistics"], TREE)  # a parent is not enough
    assert not satisfies({"statistics"}, ["data_analysis", "poetry"], TREE)
    assert satisfies(set(), [], TREE)


bids = st.lists(
    st.builds(
        Bid,
        agent_id=st.text("abcdef", min_size=1, max_size=4),
        price=st.integers(1, 100),
        reputation=st.floats(0, 5),
        at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1)).map(
            lambda d: d.replace(tzinfo=UTC)
        ),
    ),
    max_size=8,
)


@given(bids)
def test_the_best_bid_is_the_cheapest_then_the_most_reputable(all_bids):
    best = best_bid(all_bids)
    if not all_bids:
        assert best is None
        return
    assert best.price == min(b.price for b in all_bids)
    same_price = [b for b in all_bids if b.price == best.price]
    assert best.reputation == max(b.reputation for b in same_price)


ratings = st.lists(st.tuples(st.integers(1, 5), st.floats(0, 3650)), max_size=30)


@given(ratings, st.integers(0, 50), st.integers(0, 50))
def test_reputation_stays_within_zero_and_five(given_ratings, assigned, completed):
    completed = min(completed, assigned)
    score, rate = reputation_score(given_ratings, assigned, completed)
    assert 0 <= score <= 5 and 0 <= rate <= 1


@given(ratings)
def test_a_new_five_star_review_never_lowers_a_score(given_ratings):
    before, _ = reputation_score(given_ratings, 0, 0)
    after, _ = reputation_score([*given_ratings, (5, 0.0)], 0, 0)
    assert after >= before


def test_recent_reviews_weigh_more_and_few_reviews_stay_near_the_prior():
    fresh_bad, _ = reputation_score([(1, 0.0), (5, 365.0)], 0, 0)
    old_bad, _ = reputation_score([(1, 365.0), (5, 0.0)], 0, 0)
    assert fresh_bad < old_bad
    one_star_once, _ = reputation_score([(1, 0.0)], 0, 0)
    assert one_star_once > 2.0  # one review moves a score only part of the way
    half_done, rate = reputation_score([], 4, 2)
    assert rate == 0.5 and half_done < reputation_score([], 4, 4)[0]
