"""Policy and variety rules (pure functions, no I/O)."""

from __future__ import annotations

import random

from moodcast.config import RecommendationsConfig, parse
from moodcast.recommend.policy import History, effective_policy, profile_for


def items(*uris: str, source: str = "search") -> list[dict]:
    return [{"uri": u, "source": source} for u in uris]


def test_history_never_picks_one_of_the_last_n_while_others_exist():
    history, pool = History(3, random.Random(7)), items(*"abcde")
    chosen = []
    for _ in range(30):
        pick = history.order(pool)[0]["uri"]
        assert pick not in chosen[-3:]
        history.add(pick)
        chosen.append(pick)
    assert set(chosen) == set("abcde")


def test_when_everything_was_played_lately_the_oldest_comes_first():
    history = History(5)
    for uri in "abc":
        history.add(uri)
    assert [i["uri"] for i in history.order(items(*"cab"))] == ["a", "b", "c"]


def test_the_users_own_choices_come_before_search_results():
    history = History(3)
    ordered = history.order(items("s1", "s2") + items("own1", "own2", source="configured"))
    assert {i["uri"] for i in ordered[:2]} == {"own1", "own2"}
    history.add("own1")
    history.add("own2")
    assert history.order(items("s1") + items("own1", "own2", source="configured"))[0]["uri"] == "s1"


def test_variety_0_allows_repeats():
    history = History(0)
    history.add("a")
    assert history.order(items("a"))[0]["uri"] == "a"


def test_policies_and_uplift_steps():
    rc = RecommendationsConfig()
    sad, happy = rc.moods["sad"], rc.moods["happy"]
    assert effective_policy("uplift", sad) == "uplift" and effective_policy("off", sad) == "off"
    steps = [profile_for("sad", "uplift", step, rc) for step in range(5)]
    assert steps == ["calm", "neutral", "happy", "happy", "happy"]
    assert profile_for("sad", "match", 2, rc) == "sad"
    assert profile_for("happy", "uplift", 0, rc) == "happy"  # an empty uplift list: its own music
    pinned = parse({"recommendations": {"moods": {"happy": {"policy": "match"}}}}).recommendations.moods["happy"]
    assert effective_policy("uplift", pinned) == "match" and effective_policy("off", pinned) == "off"
    assert happy.policy == ""
