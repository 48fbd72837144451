"""The guided Spotify setup after `moodcast spotify-auth`: the account's devices listed, the speaker and autoplay
chosen and written into the config (comments kept), or, without a terminal, the lines to paste and nothing
changed. Real spotipy against the local Spotify server; the terminal is a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from moodcast import config
from moodcast.cli.spotify_setup import Dialog, guided_setup
from moodcast.recommend.spotify_auth import daemon_oauth
from tests.fake_spotify import write_token

CONFIG = """\
# my moodcast
[mqtt]
device_id = "livingroom"

[spotify]
client_id = "{client_id}"        # from the dashboard
client_secret_file = "{secret}"
redirect_uri = "{redirect}"
api_url = "{url}/v1/"
accounts_url = "{url}"
timeout_s = 2.0
device_name = ""                # my speaker

[state]
dir = "{state}"

[recommendations]
autoplay = false                # off until I say so
"""


def config_file(tmp_path: Path, spotify, authorised: bool = True) -> Path:
    secret = tmp_path / "spotify_secret"
    secret.write_text(spotify.client_secret + "\n")
    secret.chmod(0o600)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(client_id=spotify.client_id, secret=secret, redirect=spotify.redirect_uri,
                                  url=spotify.url, state=tmp_path / "state"))
    path.chmod(0o640)
    if authorised:
        write_token(tmp_path / "state" / "spotify_token.json", spotify.token_info())
    return path


class Script:
    """A Dialog that answers from a list and records every line and question."""

    def __init__(self, *answers: str):
        self.answers, self.seen = list(answers), []

    def ask(self, question: str) -> str:
        self.seen.append(question)
        return self.answers.pop(0)

    def say(self, text: str) -> None:
        self.seen.append(text)

    @property
    def text(self) -> str:
        return "\n".join(self.seen)


def run_setup(path: Path, *answers: str, interactive: bool = True) -> Script:
    cfg = config.load(path)
    script = Script(*answers)
    guided_setup(cfg, daemon_oauth(cfg), interactive, Dialog(script.ask, script.say))
    assert not script.answers, "every answer was asked for"
    return script


def test_the_chosen_speaker_and_autoplay_are_written_with_the_comments_kept(tmp_path, spotify):
    spotify.user_plays("spotify:playlist:x", device="Phone")
    path = config_file(tmp_path, spotify)
    before = path.read_text()
    script = run_setup(path, "1", "y", "")
    assert script.seen[0] == ("Spotify Connect devices online now:\n  1. Kitchen  (Speaker)\n"
                              "  2. Phone  (Smartphone, active)")
    assert 'Write [spotify] device_name = "Kitchen" and [recommendations] autoplay = true into ' \
           f"{path}? [Y/n] " in script.seen
    assert path.read_text() == before.replace('device_name = ""                # my speaker',
                                              'device_name = "Kitchen"         # my speaker').replace(
        "autoplay = false                # off", "autoplay = true                 # off")
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert script.seen[-1] == ('Autoplay on: when your mood changes, moodcast starts fitting music on "Kitchen" '
                               "(Spotify Premium; at most every 120 s, not over music you started yourself); switch it "
                               "off with the Autoplay switch in Home Assistant or by sending OFF to "
                               "moodcast/livingroom/set/autoplay.")
    loaded = config.load(path)
    assert loaded.spotify.device_name == "Kitchen" and loaded.recommendations.autoplay


def test_autoplay_saved_by_an_earlier_command_follows_the_choice(tmp_path, spotify):
    """set/autoplay OFF from Home Assistant is kept in settings.json and would win over config.toml at start."""
    path = config_file(tmp_path, spotify)
    settings = tmp_path / "state" / "settings.json"
    settings.write_text(json.dumps({"paused": False, "policy": "match", "autoplay": False}))
    run_setup(path, "2", "yes", "y")
    assert json.loads(settings.read_text()) == {"paused": False, "policy": "match", "autoplay": True}


def test_enter_keeps_the_autoplay_in_effect_even_when_a_switch_saved_it(tmp_path, spotify):
    """The file says off, Home Assistant's switch said ON (settings.json): the question offers ON, and Enter, or
    declining the write, leaves the saved switch as it was."""
    path = config_file(tmp_path, spotify)
    settings = tmp_path / "state" / "settings.json"
    settings.write_text(json.dumps({"paused": False, "policy": "match", "autoplay": True}))
    script = run_setup(path, "2", "", "n")
    assert any(q.endswith("(autoplay)? [Y/n] ") for q in script.seen), script.seen
    assert json.loads(settings.read_text())["autoplay"] is True
    assert "Nothing was changed." in script.seen and script.seen[-1].startswith("Autoplay on")


def test_declining_changes_nothing_and_says_so(tmp_path, spotify):
    path = config_file(tmp_path, spotify)
    before = path.read_text()
    script = run_setup(path, "kitchen", "", "n")  # a name works too, in any case; Enter keeps autoplay off
    assert path.read_text() == before
    assert "Nothing was changed." in script.seen
    assert script.seen[-1].startswith("Autoplay off: moodcast publishes its suggestions and plays nothing by itself")


def test_wrong_answers_are_asked_again(tmp_path, spotify):
    path = config_file(tmp_path, spotify)
    script = run_setup(path, "7", "Garden", "2", "maybe", "n", "no")
    assert "  '7' is not one of them: type its number" in script.seen and "  'Garden' is not one of them: type its " \
           "number" in script.seen and "  please answer y or n" in script.seen
    assert any(q.startswith('Write [spotify] device_name = "Phone" into') for q in script.seen)  # autoplay stays off
    assert config.load(path).spotify.device_name == ""


def test_no_device_online_says_how_to_wake_one(tmp_path, spotify):
    spotify.devices = []
    path = config_file(tmp_path, spotify)
    script = run_setup(path, "n")
    assert script.seen[0].startswith("No Spotify Connect device is online right now. Open Spotify on the speaker")
    assert "Play on which one?" not in script.text


def test_without_a_terminal_the_lines_to_paste_are_printed_and_nothing_changes(tmp_path, spotify):
    spotify.user_plays("spotify:playlist:x", device="Phone")
    path = config_file(tmp_path, spotify)
    before = path.read_text()
    script = run_setup(path, interactive=False)
    assert path.read_text() == before
    command = f"{Path(sys.executable).with_name('moodcast')} set-config -c {path} spotify.device_name=Phone " \
              "recommendations.autoplay=true"
    assert script.text.endswith(
        "No terminal to ask in, so nothing was changed. To choose the speaker and let music start by itself:\n"
        f"Run this to write them into {path}, its comments kept:\n  {command}\nor put these lines into it by hand "
        '(each key under its table), then restart moodcast:\n  [spotify]\n  device_name = "Phone"\n'
        "  [recommendations]\n  autoplay = true")
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=120)  # as printed
    assert done.returncode == 0, done.stderr
    assert path.read_text() == before.replace('device_name = ""               ', 'device_name = "Phone"          ') \
        .replace("autoplay = false ", "autoplay = true  ")
    assert config.load(path).spotify.device_name == "Phone" and config.load(path).recommendations.autoplay is True



def test_a_config_this_user_may_not_change_gets_the_lines_to_paste(tmp_path, spotify):
    path = config_file(tmp_path, spotify)
    link = tmp_path / "linked.toml"
    link.symlink_to(path)
    script = run_setup(link, "1", "y")  # not asked whether to write: it cannot
    assert f"{link} is a symbolic link; moodcast changes only a file itself (edit {path} by hand)." in script.seen
    assert '  [spotify]\n  device_name = "Kitchen"\n  [recommendations]\n  autoplay = true' in script.text
    assert config.load(path).spotify.device_name == ""


# -- the whole command in a pseudo-terminal ----------------------------------------------------------

class Terminal:
    """`moodcast ARGS` with a pseudo-terminal as its stdin, stdout and stderr, as a person at a shell sees it."""

    def __init__(self, *args: str):
        self.fd, child = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "moodcast.cli", *args], stdin=child, stdout=child,
                                     stderr=child, close_fds=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        os.close(child)
        self.output = ""

    def expect(self, pattern: str, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while not (found := re.search(pattern, self.output)):
            left = deadline - time.monotonic()
            assert left > 0 and self._read(left), f"no {pattern!r} in:\n{self.output}"
        return found

    def type(self, line: str) -> None:
        os.write(self.fd, f"{line}\n".encode())

    def finish(self, timeout: float = 120) -> int:
        while self._read(timeout):
            pass
        return self.proc.wait(timeout)

    def _read(self, timeout: float) -> bool:
        if not select.select([self.fd], [], [], timeout)[0]:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += data.decode(errors="replace").replace("\r\n", "\n")
        return bool(data)


def test_spotify_auth_in_a_terminal_authorises_lists_and_writes_the_choice(tmp_path, spotify):
    path = config_file(tmp_path, spotify, authorised=False)
    term = Terminal("spotify-auth", "-c", str(path))
    url = term.expect(r"(http://127\.0\.0\.1:\d+/authorize\?\S+)").group(1)
    state = parse_qs(urlsplit(url).query)["state"][0]
    term.expect("Paste the address here: ")
    term.type(f"{spotify.redirect_uri}?code={spotify.auth_code}&state={state}")
    term.expect(r"Play on which one\? \[1-2, Enter = the active device at the time\] ")
    term.type("1")
    term.expect(r"\(autoplay\)\? \[y/N\] ")
    term.type("y")
    term.expect(r"into .*config\.toml\? \[Y/n\] ")
    term.type("")
    assert term.finish() == 0, term.output
    assert "Spotify Connect devices online now:\n  1. Kitchen  (Speaker)\n  2. Phone  (Smartphone)" in term.output
    assert f"Wrote them into {path}, its comments and layout kept." in term.output
    assert "Traceback" not in term.output
    loaded = config.load(path)
    assert loaded.spotify.device_name == "Kitchen" and loaded.recommendations.autoplay
    assert "# my speaker" in path.read_text() and (tmp_path / "state" / "spotify_token.json").exists()
