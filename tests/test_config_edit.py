"""moodcast.config_edit: a few keys set in a user's config.toml, everything else kept byte for byte; files it
cannot change safely (links, FIFOs, someone else's file, layouts it does not understand) are left alone."""

from __future__ import annotations

import difflib
import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from moodcast import config
from moodcast.config_edit import ConfigEditError, set_values
from tests.other_user import MODE, OTHER_USER, file_another_user_may_not_write, run_python_as_that_user

ROOT = Path(__file__).resolve().parents[1]
CHOICE = {("spotify", "device_name"): 'Küche "Süd" #2', ("recommendations", "autoplay"): True}


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:1] in "+-"]


def test_the_reference_config_keeps_every_comment_and_only_two_lines_change(tmp_path):
    path = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.toml", path)
    path.chmod(0o640)
    before = path.read_text()
    set_values(path, CHOICE)
    after = path.read_text()
    assert changed_lines(before, after) == [
        '- device_name = ""           # Spotify Connect device to play on (e.g. "Living Room"); empty = the active one',
        '+ device_name = "Küche \\"Süd\\" #2" # Spotify Connect device to play on (e.g. "Living Room"); empty = the '
        "active one",
        "- autoplay = false           # true = start fitting music on Spotify by itself (opt-in; also an HA switch)",
        "+ autoplay = true            # true = start fitting music on Spotify by itself (opt-in; also an HA switch)",
    ]
    loaded = config.load(path)
    assert loaded.spotify.device_name == 'Küche "Süd" #2' and loaded.recommendations.autoplay is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temporary file left behind


@pytest.mark.parametrize("text, expected", [
    # a key missing from its table goes after the table's last setting, before the comments that follow it
    ('[spotify]\nclient_id = "abc"  # mine\n\n# about recommendations\n[recommendations]\npolicy = "match"\n',
     '[spotify]\nclient_id = "abc"  # mine\ndevice_name = "Kitchen"\n\n# about recommendations\n[recommendations]\n'
     'policy = "match"\nautoplay = true\n'),
    # a table missing from the file is added at its end; a file without a final newline gets one
    ('[mqtt]\nhost = "broker"', '[mqtt]\nhost = "broker"\n\n[spotify]\ndevice_name = "Kitchen"\n\n'
                                '[recommendations]\nautoplay = true\n'),
    # a value with '#' inside, indented keys and Windows line ends
    ('[spotify]\r\n  device_name = "a#b"   # old\r\n[recommendations]\r\n  autoplay=false\r\n',
     '[spotify]\r\n  device_name = "Kitchen" # old\r\n[recommendations]\r\n  autoplay=true\r\n'),
])
def test_missing_keys_and_tables_are_added_and_layouts_kept(tmp_path, text, expected):
    path = tmp_path / "config.toml"
    path.write_bytes(text.encode())
    set_values(path, {("spotify", "device_name"): "Kitchen", ("recommendations", "autoplay"): True})
    assert path.read_bytes().decode() == expected


@pytest.mark.parametrize("text", [
    'spotify = {device_name = "x"}\n',                       # an inline table
    'spotify.device_name = "x"\n',                            # a dotted key
    '[spotify]\ndevice_name = """x\ny"""\n',                  # a value over several lines
])
def test_a_layout_it_does_not_understand_is_left_alone(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigEditError, match="its layout is more than this edit understands"):
        set_values(path, {("spotify", "device_name"): "Kitchen"})
    assert path.read_text() == text


def test_a_symbolic_link_is_refused_and_its_target_unchanged(tmp_path):
    target = tmp_path / "real.toml"
    target.write_text("[spotify]\n")
    link = tmp_path / "config.toml"
    link.symlink_to(target)
    with pytest.raises(ConfigEditError, match=f"{link} is a symbolic link; moodcast changes only a file itself"):
        set_values(link, CHOICE)
    assert link.is_symlink() and target.read_text() == "[spotify]\n"


def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigEditError, match="is not a regular file"):
        set_values(fifo, CHOICE)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_a_file_this_user_may_not_change_is_named_with_its_owner_and_the_fix_offered_says_sudo():
    """The installed service's case: /etc/moodcast/config.toml belongs to root, spotify-auth runs as moodcast.
    It cannot write the choice, says why, and offers the set-config command to run as root."""
    with file_another_user_may_not_write("[spotify]\n") as path:
        code = ("import sys; from moodcast.config_edit import set_values, ConfigEditError\n"
                "from moodcast.cli.set_config import set_config_command\n"
                "choice = {('spotify', 'device_name'): 'Küche \"Süd\"', ('recommendations', 'autoplay'): True}\n"
                "try: set_values(sys.argv[1], choice)\n"
                "except ConfigEditError as e: print(e)\n"
                "print(set_config_command(sys.argv[1], choice))")
        result = run_python_as_that_user(code, str(path))
        owner, program = path.owner(), Path(sys.executable).with_name("moodcast")
        assert result.stdout.splitlines() == [
            f"user {OTHER_USER or owner} may not change {path} (it belongs to {owner}, mode {MODE})",
            f"sudo {program} set-config -c {path} 'spotify.device_name=Küche \"Süd\"' recommendations.autoplay=true",
        ], result.stderr
        assert path.read_text() == "[spotify]\n"
