"""`moodcast set-config`: settings written into a config file with its comments kept, each value read as its
setting's type says, the whole file validated first; a bad word is one line and exit 78, and nothing is written.
The command `spotify-auth` prints for a file it may not write (the installed one is root's) says sudo: that case
is in test_config_edit.py, beside the edit's own refusal."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from moodcast import config
from moodcast.cli.set_config import set_config_command
from tests.daemon_process import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def reference(tmp_path) -> Path:
    path = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.toml", path)
    path.chmod(0o640)
    return path


def test_settings_are_written_with_the_comments_kept(reference):
    before = reference.read_text()
    result = run_cli("set-config", "-c", str(reference), "spotify.device_name=Living Room", "mqtt.port=1884",
                     "recommendations.autoplay=true", "mood.smoothing=0.7", "recommendations.policy=match",
                     timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f'{reference}: set [spotify] device_name = "Living Room" and [mqtt] port = 1884 and [recommendations] '
        'autoplay = true and [mood] smoothing = 0.7 and [recommendations] policy = "match", comments and layout '
        "kept. If moodcast is running, restart it to apply: sudo systemctl restart moodcast")
    assert "wins over the file at start" in result.stdout  # autoplay is a Home Assistant switch too
    loaded = config.load(reference)
    assert (loaded.spotify.device_name, loaded.mqtt.port, loaded.recommendations.autoplay, loaded.mood.smoothing,
            loaded.recommendations.policy) == ("Living Room", 1884, True, 0.7, "match")
    after = reference.read_text()
    assert len(after.splitlines()) == len(before.splitlines())  # every key was there: five lines changed in place
    assert sum(a != b for a, b in zip(before.splitlines(), after.splitlines(), strict=True)) == 5
    assert [line for line in after.splitlines() if line.lstrip().startswith("#")] == \
        [line for line in before.splitlines() if line.lstrip().startswith("#")]


@pytest.mark.parametrize("word, says", [
    ("recommendations.autoplay=yes", "set-config: [recommendations] autoplay is true or false, not 'yes'"),
    ("mqtt.port=abc", "set-config: [mqtt] port is a number, not 'abc'"),
    ("mqtt.port=70000", "config.toml: [mqtt] port: expected integer 1–65535, got 70000"),  # the file's own checks
    ("mood.smoothing=nan", "set-config: [mood] smoothing must be a finite number, not 'nan'"),
    ("recommendations.policy=loud", "config.toml: [recommendations] policy: expected one of"),
    ("spotify.nope=1", "set-config: no setting 'nope' in [spotify]"),
    ("speakers.kitchen=1", "set-config: no table [speakers] in a moodcast configuration"),
    ("recommendations.moods=1", "set-config: [recommendations] moods is not text, true/false or a number: edit the "
                                "file for it"),
    ("/etc/moodcast/config.toml", 'set-config: "/etc/moodcast/config.toml" is not TABLE.KEY=VALUE, e.g. '
                                  "spotify.device_name=Kitchen (a setting of a [table] of the file; name the file "
                                  "with -c FILE)"),
])
def test_a_bad_setting_is_one_line_78_and_nothing_is_written(reference, word, says):
    before = reference.read_text()
    result = run_cli("set-config", "-c", str(reference), "spotify.device_name=Kitchen", word, timeout=120)
    assert (result.returncode, result.stdout) == (78, "")
    assert result.stderr.startswith(f"moodcast: {says}") and result.stderr.count("\n") == 1, result.stderr
    assert reference.read_text() == before


def test_a_symbolic_link_is_refused(reference, tmp_path):
    link = tmp_path / "linked.toml"
    link.symlink_to(reference)
    result = run_cli("set-config", "-c", str(link), "spotify.device_name=Kitchen", timeout=120)
    assert result.returncode == 78 and result.stderr.startswith(f"moodcast: {link} is a symbolic link")
    assert config.load(reference).spotify.device_name == ""
    assert set_config_command(str(link), {("spotify", "device_name"): "Kitchen"}) is None  # not offered either

