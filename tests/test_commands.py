"""Every command, every accepted spelling, and every way a command can be invalid."""

from __future__ import annotations

import random
import threading

import pytest

from moodcast.labels import Policy
from moodcast.mqtt.commands import (
    COMMANDS,
    MAX_NAME,
    MAX_PAYLOAD,
    Command,
    CommandError,
    CommandInbox,
    Incoming,
    Rejected,
    Setting,
    parse_command,
)


@pytest.mark.parametrize("name, payload, value", [
    ("pause", b"", True),
    ("pause", b"anything at all", True),  # payload ignored
    ("resume", b"", False),
    ("resume", b"{not json", False),
    ("snapshot_stats", b"", None),
    ("snapshot_stats", b"PRESS", None),
    ("calibrate", b"PRESS", None),
    ("calibrate", b"", None),
    ("reset_calibration", b"PRESS", None),
    ("policy", b"match", "match"),
    ("policy", b"uplift", "uplift"),
    ("policy", b"off", "off"),
    ("policy", b" Uplift\n", "uplift"),
    ("policy", b'"uplift"', "uplift"),
    ("policy", b'{"value": "MATCH"}', "match"),
    ("autoplay", b"on", True),
    ("autoplay", b"ON", True),
    ("autoplay", b"True", True),
    ("autoplay", b"1", True),
    ("autoplay", b"off", False),
    ("autoplay", b"OFF", False),
    ("autoplay", b"false", False),
    ("autoplay", b"0", False),
    ("autoplay", b'{"value": true}', True),
    ("autoplay", b'{"value": 0}', False),
    ("autoplay", b'"on"', True),
    ("paused", b"ON", True),
    ("paused", b"off", False),
    ("paused", b'{"value": false}', False),
])
def test_valid_commands(name, payload, value):
    assert parse_command(name, payload) == Command(name, value)


@pytest.mark.parametrize("name, setting", [
    ("pause", "paused"), ("resume", "paused"), ("paused", "paused"),
    ("policy", "policy"), ("autoplay", "autoplay"), ("snapshot_stats", None), ("calibrate", None),
    ("reset_calibration", None),
])
def test_each_command_names_the_setting_it_changes(name, setting):
    assert parse_command(name, b"on" if name in ("paused", "autoplay") else b"off").setting == setting


def test_a_payload_of_exactly_the_limit_is_accepted():
    assert parse_command("policy", b"off" + b" " * (MAX_PAYLOAD - 3)).value == "off"


@pytest.mark.parametrize("name, payload, message", [
    ("reboot", b"", "unknown command 'reboot'"),
    ("", b"", "unknown command ''"),
    ("Pause", b"", "unknown command 'Pause'"),  # topic levels are case-sensitive
    ("x" * 500, b"", "unknown command 'xxxx"),
    ("policy", b"", "policy: expected one of match, uplift, off, got ''"),
    ("policy", b"calm", "policy: expected one of match, uplift, off, got 'calm'"),
    ("policy", b"1", "policy: expected one of"),
    ("policy", b'{"value": 1}', "policy: expected one of match, uplift, off, got 1"),
    ("policy", b'{"value": "uplift"', "policy: payload looks like JSON but is not valid JSON"),
    ("policy", b'{"policy": "uplift"}', 'policy: a JSON payload must be {"value": ...}'),
    ("policy", b'{"value": "uplift", "x": 1}', 'policy: a JSON payload must be {"value": ...}'),
    ("policy", b'"uplift', "policy: payload looks like JSON but is not valid JSON"),
    ("autoplay", b"", "autoplay: expected on/off (or true/false, 1/0), got ''"),
    ("autoplay", b"yes", "autoplay: expected on/off"),
    ("autoplay", b"2", "autoplay: expected on/off"),
    ("autoplay", b'{"value": null}', "autoplay: expected on/off (or true/false, 1/0), got None"),
    ("autoplay", b'{"value": 1.0}', "autoplay: expected on/off"),
    ("autoplay", b'{"value": [true]}', "autoplay: expected on/off"),
    ("paused", b"pause", "paused: expected on/off"),
    ("paused", b"{", "paused: payload looks like JSON but is not valid JSON"),
    ("autoplay", b"\xff\xfeon", "autoplay: payload is not UTF-8 text"),
    ("pause", b"\xc3\x28", "pause: payload is not UTF-8 text"),
    ("policy", b"off" + b" " * MAX_PAYLOAD,
     f"policy: payload of {MAX_PAYLOAD + 3} bytes is over the {MAX_PAYLOAD}-byte limit"),
    ("resume", b"x" * (MAX_PAYLOAD + 1), "resume: payload of 257 bytes is over the 256-byte limit"),
])
def test_invalid_commands_raise_a_clear_error(name, payload, message):
    with pytest.raises(CommandError) as info:
        parse_command(name, payload)
    assert str(info.value).startswith(message)
    assert info.value.message == str(info.value)
    assert info.value.command == (name if len(name) <= 40 else name[:37] + "...")
    assert len(str(info.value)) < 200  # short enough for the result event, whatever the input


def test_a_command_cut_on_arrival_keeps_its_real_size():
    incoming = Incoming.cut("x" * 60_000, b"y" * 100_000_000)
    assert (len(incoming.name), len(incoming.payload), incoming.size) == (MAX_NAME + 1, MAX_PAYLOAD + 1, 100_000_000)
    with pytest.raises(CommandError) as info:
        parse_command("policy", Incoming.cut("policy", b"z" * 5000).payload, 5000)
    assert info.value.message == "policy: payload of 5000 bytes is over the 256-byte limit"


def test_error_messages_list_the_known_commands():
    with pytest.raises(CommandError, match="known: pause, resume, paused, policy, autoplay, snapshot_stats, calibrate, "
                                           "reset_calibration"):
        parse_command("reboot", b"")


def test_command_error_is_a_value_error():
    assert issubclass(CommandError, ValueError)


def test_contract_commands():
    assert COMMANDS == ("pause", "resume", "paused", "policy", "autoplay", "snapshot_stats", "calibrate",
                        "reset_calibration")
    assert MAX_PAYLOAD == 256


# -- the inbox between paho's thread and the frame loop ---------------------------------------------

def arrive(inbox: CommandInbox, name: str, payload: str = "") -> None:
    inbox.put(Incoming.cut(name, payload.encode()))


def test_a_flood_never_pushes_out_the_last_word():
    """The issue's case: 100 commands, then `paused ON`; and a burst ending on `policy match`."""
    inbox = CommandInbox(maxsize=64)
    for i in range(5000):
        name = ("resume", "policy", "autoplay", "snapshot_stats", "reboot")[i % 5]
        arrive(inbox, name, "uplift" if name == "policy" else "")
    arrive(inbox, "paused", "ON")
    for _ in range(500):
        arrive(inbox, "policy", "uplift")
    arrive(inbox, "policy", "match")
    batch = inbox.take()
    assert batch.settings == [Command("paused", True), Command("policy", Policy.MATCH)]  # autoplay "" was invalid
    assert len(batch.results) == 64 and batch.results[-1] == Command("policy", Policy.MATCH)
    assert inbox.newly_dropped() == 5502 - 64 and inbox.newly_dropped() == 0
    assert inbox.take().results == []


def test_the_privacy_pause_comes_first_and_each_setting_once():
    inbox = CommandInbox()
    for name, payload in [("autoplay", "on"), ("policy", "off"), ("pause", ""), ("autoplay", "off"), ("resume", ""),
                          ("policy", "match"), ("paused", "on")]:
        arrive(inbox, name, payload)
    batch = inbox.take()
    assert [c.setting for c in batch.settings] == [Setting.PAUSED, Setting.POLICY, Setting.AUTOPLAY]
    assert [c.value for c in batch.settings] == [True, Policy.MATCH, False]
    assert [batch.superseded(r) for r in batch.results] == [True, True, True, False, True, False, False]


def test_an_invalid_command_never_replaces_a_valid_value():
    inbox = CommandInbox()
    arrive(inbox, "paused", "on")
    arrive(inbox, "paused", "maybe")
    batch = inbox.take()
    assert batch.settings == [Command("paused", True)]
    assert batch.results[1] == Rejected("paused", "paused: expected on/off (or true/false, 1/0), got 'maybe'")
    assert not batch.superseded(batch.results[0])


def test_snapshot_stats_is_reported_in_order_and_never_coalesced():
    inbox = CommandInbox()
    for _ in range(3):
        arrive(inbox, "snapshot_stats")
    batch = inbox.take()
    assert batch.settings == [] and batch.results == [Command("snapshot_stats", None)] * 3


def race(sent: list[tuple[str, str]]) -> tuple[dict, int, int]:
    """paho's thread puts `sent` while the frame loop takes -> (applied settings, results taken, dropped)."""
    inbox, applied, taken = CommandInbox(maxsize=16), {}, 0

    def take() -> None:
        nonlocal taken
        batch = inbox.take()
        applied.update({c.setting: c.value for c in batch.settings})
        taken += len(batch.results)

    producer = threading.Thread(target=lambda: [arrive(inbox, name, value) for name, value in sent])
    producer.start()
    while producer.is_alive():
        take()
    producer.join()
    take()  # what arrived after the last look
    return applied, taken, inbox.newly_dropped()


def test_the_last_word_wins_while_paho_and_the_frame_loop_race():
    """Whatever the interleaving, the newest value of each setting is applied after the burst, and
    nothing is lost without being counted."""
    rng = random.Random(25)
    for _ in range(20):
        sent = [("paused", rng.choice(["on", "off"])) if rng.random() < 0.5 else
                ("policy", rng.choice(["match", "uplift", "off"])) for _ in range(2000)]
        sent += [("policy", "match"), ("policy", "sideways"), ("paused", "on")]
        applied, taken, dropped = race(sent)
        assert applied == {Setting.PAUSED: True, Setting.POLICY: Policy.MATCH}
        assert taken + dropped == len(sent)
