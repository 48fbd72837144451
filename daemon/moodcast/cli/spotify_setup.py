"""After `moodcast spotify-auth` has a token: choose the speaker and whether music starts by itself.

It lists the account's Spotify Connect devices, asks which one to play on and whether autoplay
should be on, and writes `[spotify] device_name` and `[recommendations] autoplay` into the
configuration it was given (moodcast.config_edit: comments and layout kept). Autoplay that an
earlier command (Home Assistant's switch, `set/autoplay`) saved in the state directory would win
over config.toml at the next start, so that saved value is changed too. Without a terminal to
ask in, or where this user may not write the file (the installed one is root's), it prints the
`moodcast set-config` command that would write them, and the lines to paste, and changes nothing.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

from moodcast.cli.set_config import listed, set_config_command
from moodcast.config import Config
from moodcast.config_edit import ConfigEditError, Setting, check_editable, set_values, toml_value
from moodcast.recommend.spotify import Device, SpotifyClient, SpotifyFailure, find_device
from moodcast.service.settings import SettingsFile
from moodcast.topics import COMMAND_LEVEL

DEVICE: Setting = ("spotify", "device_name")
AUTOPLAY: Setting = ("recommendations", "autoplay")
ASKS = 3  # a wrong answer is asked again this often, then the setting is left as it is


@dataclasses.dataclass
class Dialog:
    """Where questions go and answers come from (a terminal; the tests drive one through a pty)."""
    ask: Callable[[str], str] = input
    say: Callable[[str], None] = print


def guided_setup(config: Config, oauth, interactive: bool, dialog: Dialog | None = None) -> None:
    dialog = dialog or Dialog()
    try:
        devices = SpotifyClient(config.spotify, oauth).devices()
    except SpotifyFailure as e:
        dialog.say(f"(could not list the Spotify Connect devices: {e.message}; run spotify-auth again to choose one)")
        return
    dialog.say(_device_list(devices))
    if not interactive:
        _show_lines_to_paste(config, devices, dialog)
        return
    device = _choose_device(config, devices, dialog)
    saved = SettingsFile(config.state_dir).saved()
    in_effect = saved.autoplay if saved else config.recommendations.autoplay  # a saved switch wins at start
    autoplay = _yes(dialog, "Start fitting music on it by itself when your mood changes (autoplay)?", in_effect)
    changes: dict[Setting, str | bool] = {}
    if device != config.spotify.device_name:
        changes[DEVICE] = device
    if autoplay != config.recommendations.autoplay:
        changes[AUTOPLAY] = autoplay
    if changes and not _apply(config, changes, dialog):
        device, autoplay = config.spotify.device_name, in_effect
    _sync_saved_autoplay(config, autoplay, dialog)
    dialog.say(_what_happens(config, device, autoplay))


def interactive_terminal() -> bool:
    return all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdin, sys.stdout))


def _device_list(devices: list[Device]) -> str:
    if not devices:
        return ("No Spotify Connect device is online right now. Open Spotify on the speaker (or play something on "
                "it once) and run spotify-auth again to choose it; until then moodcast plays on the active device.")
    rows = [f"  {n}. {d.name}  ({', '.join(filter(None, [d.type, 'active' if d.is_active else '']))})"
            for n, d in enumerate(devices, 1)]
    return "Spotify Connect devices online now:\n" + "\n".join(rows)


def _choose_device(config: Config, devices: list[Device], dialog: Dialog) -> str:
    current = config.spotify.device_name
    if not devices:
        return current
    keep = f'keep "{current}"' if current else "the active device at the time"
    for _ in range(ASKS):
        answer = dialog.ask(f"Play on which one? [1-{len(devices)}, Enter = {keep}] ").strip()
        if not answer:
            return current
        if answer.isdigit() and 1 <= int(answer) <= len(devices):
            return devices[int(answer) - 1].name
        named = find_device(devices, answer)
        if named:
            return named.name
        dialog.say(f"  {answer!r} is not one of them: type its number")
    return current


def _yes(dialog: Dialog, question: str, default: bool) -> bool:
    for _ in range(ASKS):
        answer = dialog.ask(f"{question} [{'Y/n' if default else 'y/N'}] ").strip().lower()
        if not answer:
            return default
        if answer in ("y", "yes", "n", "no"):
            return answer.startswith("y")
        dialog.say("  please answer y or n")
    return default


def _apply(config: Config, changes: dict[Setting, str | bool], dialog: Dialog) -> bool:
    """Write the changes (asked first), or show them to paste where this user may not; False: declined."""
    path = config.source_path
    try:
        check_editable(path)
    except ConfigEditError as e:
        dialog.say(f"{e}.")
        dialog.say(_paste(config, changes))
        return True
    if not _yes(dialog, f"Write {listed(changes)} into {path}?", True):
        dialog.say("Nothing was changed.")
        return False
    try:
        set_values(path, changes)
    except ConfigEditError as e:
        dialog.say(f"moodcast: could not change it: {e}")
        dialog.say(_paste(config, changes))
        return True
    dialog.say(f"Wrote them into {path}, its comments and layout kept. If moodcast is running, restart it to "
               "apply them: sudo systemctl restart moodcast")
    return True


def _show_lines_to_paste(config: Config, devices: list[Device], dialog: Dialog) -> None:
    active = [d for d in devices if d.is_active]
    name = config.spotify.device_name or next((d.name for d in active or devices), "NAME AS THE SPOTIFY APP SHOWS IT")
    dialog.say("No terminal to ask in, so nothing was changed. To choose the speaker and let music start by itself:")
    dialog.say(_paste(config, {DEVICE: name, AUTOPLAY: True}))


def _paste(config: Config, changes: dict[Setting, str | bool]) -> str:
    command = set_config_command(config.source_path, changes)
    if command:
        lines = [f"Run this to write them into {config.source_path}, its comments kept:", f"  {command}",
                 "or put these lines into it by hand (each key under its table), then restart moodcast:"]
    else:
        lines = [f"Put these lines into {config.source_path} (each key under its table), then restart moodcast:"]
    for (table, key), value in changes.items():
        lines += [f"  [{table}]", f"  {key} = {toml_value(value)}"]
    return "\n".join(lines)


def _sync_saved_autoplay(config: Config, autoplay: bool, dialog: Dialog) -> None:
    """A value saved by an earlier set/autoplay wins over config.toml at start: make it the one chosen now."""
    settings = SettingsFile(config.state_dir)
    saved = settings.saved()
    if saved is None or saved.autoplay == autoplay:
        return
    try:
        settings.save(dataclasses.replace(saved, autoplay=autoplay))
    except OSError as e:
        dialog.say(f"moodcast: could not update {settings.path} ({e.strerror or e}): an earlier "
                   f"set/autoplay {'OFF' if autoplay else 'ON'} there still wins; use the switch after the restart")


def _what_happens(config: Config, device: str, autoplay: bool) -> str:
    """One line: what moodcast will do with the speaker, and how to switch that."""
    command = f"{config.topics.of(COMMAND_LEVEL)}/autoplay"
    if not autoplay:
        return (f"Autoplay off: moodcast publishes its suggestions and plays nothing by itself; switch it on with "
                f"the Autoplay switch in Home Assistant or by sending ON to {command}.")
    rc = config.recommendations
    speaker = f'"{device}"' if device else "the active Spotify device"
    manual = ", not over music you started yourself" if rc.respect_manual else ""
    return (f"Autoplay on: when your mood changes, moodcast starts fitting music on {speaker} (Spotify Premium; "
            f"at most every {rc.cooldown_s:g} s{manual}); switch it off with the Autoplay switch in Home Assistant "
            f"or by sending OFF to {command}.")
