"""The [spotify], [youtube] and [recommendations] configuration: reference file, defaults, errors."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

from moodcast import config as config_module
from moodcast.config import ConfigError, MoodMusicConfig, RecommendationsConfig, SpotifyConfig, YoutubeConfig
from moodcast.labels import MOODS

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REFERENCE = Path(__file__).resolve().parent.parent / "config.toml"


def _keys(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def test_reference_file_shows_every_key_with_its_default():
    raw = tomllib.loads(REFERENCE.read_text())
    assert set(raw["spotify"]) == _keys(SpotifyConfig)
    assert set(raw["youtube"]) == _keys(YoutubeConfig)
    assert set(raw["recommendations"]) == _keys(RecommendationsConfig)
    assert set(raw["recommendations"]["moods"]) == set(MOODS) | {"calm"}
    for table in raw["recommendations"]["moods"].values():
        assert set(table) == _keys(MoodMusicConfig)
    loaded, defaults = config_module.load(REFERENCE), config_module.Config()
    assert loaded.spotify == defaults.spotify
    assert loaded.youtube == defaults.youtube
    assert loaded.recommendations == defaults.recommendations


def test_every_mood_has_searches_and_valid_uplift_steps_by_default():
    rc = RecommendationsConfig()
    for mood in MOODS:
        table = rc.moods[mood]
        assert table.spotify_search and table.youtube_search
        assert all(step in rc.moods for step in table.uplift)
    assert rc.moods["sad"].uplift == ["calm", "neutral", "happy"]


def test_a_partial_mood_table_keeps_the_shipped_defaults():
    cfg = config_module.parse({"recommendations": {"moods": {"sad": {"volume": 30}}}})
    sad = cfg.recommendations.moods["sad"]
    assert sad.volume == 30 and sad.spotify_search == ["sad songs", "melancholy piano"]
    assert set(cfg.recommendations.moods) == set(MOODS) | {"calm"}  # the others are still there


def test_an_explicit_empty_list_switches_a_default_off():
    cfg = config_module.parse({"recommendations": {"moods": {"sad": {"spotify_search": []}}}})
    assert cfg.recommendations.moods["sad"].spotify_search == []


def test_links_become_uris_and_extra_tables_can_be_uplift_steps():
    cfg = config_module.parse({"recommendations": {"moods": {
        "sad": {"uplift": ["rainy"], "spotify_uris": ["https://open.spotify.com/intl-de/album/1A2b3C?si=xyz"]},
        "rainy": {"spotify_uris": ["spotify:playlist:37i9dQZF1DX3rxVfibe1L0"]}}}})
    assert cfg.recommendations.moods["sad"].spotify_uris == ["spotify:album:1A2b3C"]
    assert cfg.recommendations.moods["rainy"].spotify_search == []


@pytest.mark.parametrize("raw, message", [
    ({"recommendations": {"moods": {"sad": {"uplift": ["calmm"]}}}},
     'config.toml: [recommendations.moods.sad] uplift: no table named "calmm"'),
    ({"recommendations": {"moods": {"sad": {"spotify_uris": ["my sad playlist"]}}}},
     'config.toml: [recommendations.moods.sad] spotify_uris: expected spotify:playlist|album|artist|track:ID'),
    ({"recommendations": {"moods": {"sad": {"policy": "cheer"}}}},
     'config.toml: [recommendations.moods.sad] policy: expected one of "", "match", "uplift", "off", got "cheer"'),
    ({"recommendations": {"policy": "louder"}}, 'config.toml: [recommendations] policy: expected one of'),
    ({"spotify": {"search_limit": 50}}, "config.toml: [spotify] search_limit: expected integer 1–10, got 50"),
    ({"spotify": {"timeout_s": "x"}}, 'config.toml: [spotify] timeout_s: expected number 0.1–60, got "x"'),
    ({"youtube": {"safe_search": "off"}}, "config.toml: [youtube] safe_search: expected one of"),
    ({"youtube": {"daily_budget": 20000}}, "config.toml: [youtube] daily_budget: expected integer 0–10000"),
    ({"recommendations": {"moods": {"sad": {"volume": 101}}}},
     "config.toml: [recommendations.moods.sad] volume: expected integer -1–100, got 101"),
])
def test_bad_values_give_one_clear_line(raw, message):
    with pytest.raises(ConfigError) as err:
        config_module.parse(raw)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
