"""`moodcast spotify-auth` and `moodcast recommend <mood>` against the local fake servers."""

from __future__ import annotations

import argparse
import json
import re
import stat
from urllib.parse import parse_qs, urlsplit

import pytest

from moodcast.cli.recommend import add_commands
from moodcast.recommend.service import RecommendationService
from tests.recommend_support import Published, make_config


def run_command(cfg, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="moodcast")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args, cfg)


def paste_redirect(capsys, spotify, make_answer):
    """An input() that reads the authorize URL the command printed and answers like a browser would."""
    seen = {}

    def answer(prompt=""):
        printed = capsys.readouterr().out
        url = re.search(r"(http://127\.0\.0\.1:\d+/authorize\?\S+)", printed).group(1)
        seen.update({k: v[0] for k, v in parse_qs(urlsplit(url).query).items()})
        return make_answer(seen)

    return answer, seen


def test_spotify_auth_prints_the_url_reads_the_redirect_and_keeps_the_token_0600(tmp_path, spotify, capsys,
                                                                                 monkeypatch):
    cfg = make_config(tmp_path, spotify, authorised=False)
    answer, seen = paste_redirect(capsys, spotify,
                                  lambda q: f"{spotify.redirect_uri}?code={spotify.auth_code}&state={q['state']}")
    monkeypatch.setattr("builtins.input", answer)
    assert run_command(cfg, "spotify-auth") == 0
    assert seen["client_id"] == spotify.client_id and seen["response_type"] == "code"
    assert seen["redirect_uri"] == "http://127.0.0.1:8888/callback"
    assert set(seen["scope"].split()) == {"user-read-playback-state", "user-modify-playback-state"}
    token_file = cfg.state_dir / "spotify_token.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["refresh_token"] == spotify.refresh_token
    out = capsys.readouterr().out  # no terminal under pytest: the guided setup only shows what to paste
    assert "Spotify Connect devices online now:\n  1. Kitchen  (Speaker)\n  2. Phone  (Smartphone)\n" in out
    assert "No terminal to ask in, so nothing was changed." in out
    assert RecommendationService(cfg, Published()).spotify is not None  # the daemon can use it now


@pytest.mark.parametrize("answer, says", [
    (lambda s, q: f"{s.redirect_uri}?code={s.auth_code}&state=from-another-login", "no code from this login"),
    (lambda s, q: f"{s.redirect_uri}?error=access_denied&state={q['state']}", "access_denied"),
    (lambda s, q: f"{s.redirect_uri}?code=stale-code&state={q['state']}", "invalid_grant"),
])
def test_spotify_auth_refuses_a_wrong_answer_in_one_line(tmp_path, spotify, capsys, monkeypatch, answer, says):
    cfg = make_config(tmp_path, spotify, authorised=False)
    monkeypatch.setattr("builtins.input", paste_redirect(capsys, spotify, lambda q: answer(spotify, q))[0])
    assert run_command(cfg, "spotify-auth") == 1
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1
    assert not (cfg.state_dir / "spotify_token.json").exists()


@pytest.mark.parametrize("overrides, says", [
    ({"spotify": {"redirect_uri": "http://localhost:8888/callback"}}, "loopback IP"),
    ({"spotify": {"client_id": ""}}, "no [spotify] client_id"),
])
def test_spotify_auth_explains_missing_settings(tmp_path, spotify, capsys, overrides, says):
    cfg = make_config(tmp_path, spotify, authorised=False, overrides=overrides)
    assert run_command(cfg, "spotify-auth") == 78
    assert says in capsys.readouterr().err


def test_recommend_shows_the_recommendation_without_playing(tmp_path, spotify, youtube, capsys):
    cfg = make_config(tmp_path, spotify, youtube)
    assert run_command(cfg, "recommend", "sad", "--policy", "uplift") == 0
    out = capsys.readouterr().out
    assert out.startswith("sad: policy uplift\nmusic:\n")
    music = out.split("music:\n")[1].split("videos:")[0].splitlines()
    assert len(music) == 5 and all(line.startswith(("  Calm Acoustic Mix", "  Peaceful Piano Mix")) for line in music)
    assert "videos:\n  Relaxing Music & Friends #1" in out and "(calm music; ready in" in out
    assert spotify.plays() == []


def test_recommend_play_json_starts_the_music(tmp_path, spotify, youtube, capsys):
    cfg = make_config(tmp_path, spotify, youtube)
    assert run_command(cfg, "recommend", "happy", "--play", "--json") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    rec = next(p for p in lines if p["kind"] == "recommendation")
    playback = next(p for p in lines if p["kind"] == "playback")
    assert playback["ok"] and playback["context_uri"] == rec["music"][0]["uri"] == spotify.playback["context"]["uri"]


def test_recommend_rejects_an_unknown_mood(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_command(make_config(tmp_path), "recommend", "sleepy")
    assert "invalid choice: 'sleepy'" in capsys.readouterr().err


def test_the_main_cli_offers_both_commands(tmp_path, capsys):
    from moodcast.cli import main

    path = tmp_path / "config.toml"
    path.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n[spotify]\nenabled = false\n[youtube]\nenabled = false\n'
                    '[recommendations.moods.neutral]\nspotify_uris = ["spotify:playlist:abc123"]\n')
    assert main(["recommend", "neutral", "-c", str(path)]) == 0
    assert capsys.readouterr().out.startswith("neutral: policy uplift\nmusic:\n  Spotify playlist abc123 -   "
                                              "https://open.spotify.com/playlist/abc123  [configured]\n")
    with pytest.raises(SystemExit):
        main(["spotify-auth", "--help"])
    assert "usage: moodcast spotify-auth" in capsys.readouterr().out
