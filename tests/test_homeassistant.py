"""Home Assistant discovery: configs point inside the contract, ids are stable and clean, the
templates render real payloads the way HA would, and the configs survive a real broker."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from bench.mosquitto import Subscriber, publish
from moodcast import config
from moodcast.labels import MOODS
from moodcast.mqtt import homeassistant as ha
from moodcast.mqtt import payloads
from moodcast.mqtt.commands import COMMANDS, parse_command
from moodcast.mqtt.payloads import TOPICS

BASE = "moodcast/livingroom"
LOVELACE = Path(__file__).resolve().parents[1] / "deploy" / "homeassistant" / "lovelace.yaml"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "mqtt.md"
ID = re.compile(r"^[a-zA-Z0-9_-]+$")
NOW = 1777650245.123


def topics(device_id="livingroom", prefix="moodcast", discovery_prefix="homeassistant"):
    """The topics as the daemon gets them: through the configuration, which checks the prefixes and
    sanitises the device id."""
    mqtt = {"device_id": device_id, "prefix": prefix, "discovery_prefix": discovery_prefix}
    return config.parse({"mqtt": mqtt}).topics


def configs(device_id="livingroom", prefix="moodcast", discovery_prefix="homeassistant"):
    return ha.discovery_messages(topics(device_id, prefix, discovery_prefix), "0.1.0")


def by_key(device_id="livingroom"):
    return {topic.split("/")[-2]: cfg for topic, cfg in configs(device_id)}


def render(template: str, payload) -> str:
    """Render a value/attributes template as HA does: `value` is the text, `value_json` the parsed JSON.

    Needs jinja2 (Home Assistant's template engine; add it to the test extras)."""
    sandbox = pytest.importorskip("jinja2.sandbox")
    env = sandbox.ImmutableSandboxedEnvironment()
    text = json.dumps(payload)
    return env.from_string(template).render(value=text, value_json=json.loads(text))


def a_state(**kw):
    args = dict(mood="happy", confidence=0.8123, scores={m: 1 / 7 for m in MOODS}, faces=1, since=NOW - 9,
                paused=False, policy="uplift", autoplay=True, now=NOW)
    return payloads.state(**{**args, **kw})


def a_recommendation(music=True, videos=True, title="Sunday Morning Lift"):
    return payloads.stamp({
        "mood": "sad", "policy": "uplift", "generated_at": payloads.iso(NOW),
        "music": [{"title": title, "artist": "me", "uri": "spotify:playlist:x", "url": "https://open.spotify.com/playlist/x",
                   "source": "configured"}] if music else [],
        "videos": [{"title": "Feel-good mix", "channel": "Chan", "video_id": "aBcDeFgHiJ0",
                    "url": "https://www.youtube.com/watch?v=aBcDeFgHiJ0", "source": "cache"}] if videos else [],
    }, NOW)


# -- structure ---------------------------------------------------------------------------------

def test_entities_and_topics():
    topics = [t for t, _ in configs()]
    assert topics == [
        "homeassistant/sensor/moodcast_livingroom/mood/config",
        "homeassistant/sensor/moodcast_livingroom/confidence/config",
        "homeassistant/binary_sensor/moodcast_livingroom/face/config",
        "homeassistant/switch/moodcast_livingroom/paused/config",
        "homeassistant/select/moodcast_livingroom/policy/config",
        "homeassistant/switch/moodcast_livingroom/autoplay/config",
        "homeassistant/sensor/moodcast_livingroom/music/config",
        "homeassistant/sensor/moodcast_livingroom/video/config",
        "homeassistant/button/moodcast_livingroom/calibrate/config",
        "homeassistant/button/moodcast_livingroom/reset_calibration/config",
        "homeassistant/button/moodcast_livingroom/snapshot_stats/config",
        "homeassistant/sensor/moodcast_livingroom/fps/config",
        "homeassistant/sensor/moodcast_livingroom/cpu/config",
        *(f"homeassistant/sensor/moodcast_livingroom/{mood}_minutes_today/config" for mood in MOODS),
    ]


def test_unique_ids_are_stable_and_distinct():
    # These ids are what HA keys entity history and automations on: changing one is a breaking change.
    ids = [cfg["unique_id"] for _, cfg in configs()]
    assert ids == [f"moodcast_livingroom_{k}" for k in
                   ("mood", "confidence", "face", "paused", "policy", "autoplay", "music", "video",
                    "calibrate", "reset_calibration", "snapshot_stats", "fps", "cpu",
                    *(f"{mood}_minutes_today" for mood in MOODS))]
    assert ids == [cfg["unique_id"] for _, cfg in configs()]
    assert len({cfg["unique_id"] for _, cfg in configs("kitchen")} & set(ids)) == 0


@pytest.mark.parametrize("device_id, host", [("livingroom", ""), ("-x-", ""),
                                             ("", "Living Room.Pi-2"), ("", "pi@home/üöä")])
def test_ids_and_topics_are_sanitised(monkeypatch, device_id, host):
    """A configured device_id is clean or refused (test_topics.py); the host name is cut down."""
    monkeypatch.setattr(socket, "gethostname", lambda: host)
    for topic, cfg in configs(device_id):
        prefix, component, node, key, last = topic.split("/")
        assert (prefix, last) == ("homeassistant", "config")
        assert component in ("sensor", "binary_sensor", "switch", "select", "button")
        assert all(ID.match(level) for level in (node, key)), topic
        assert ID.match(cfg["unique_id"]) and ID.match(cfg["object_id"])
        domain, slug = cfg["default_entity_id"].split(".")
        assert domain == component and re.match(r"^[a-z0-9_]+$", slug)
        assert all(ID.match(i) for i in cfg["device"]["identifiers"])


def test_every_entity_has_the_required_keys_and_one_device():
    devices = set()
    for _, cfg in configs():
        for key in ("unique_id", "object_id", "default_entity_id", "name", "availability_topic", "device", "qos"):
            assert key in cfg, (cfg["unique_id"], key)
        assert "state_topic" in cfg or "command_topic" in cfg
        device = cfg["device"]
        assert set(device) == {"identifiers", "name", "manufacturer", "model", "sw_version"}
        assert device["manufacturer"] == "moodcast" and device["sw_version"] == "0.1.0"
        devices.add(json.dumps(device, sort_keys=True))
    assert len(devices) == 1
    assert by_key()["mood"]["icon"].startswith("mdi:")
    assert by_key()["confidence"]["unit_of_measurement"] == "%"


def test_availability_is_wired_to_the_last_will_topic():
    for _, cfg in configs():
        assert cfg["availability_topic"] == f"{BASE}/availability"
        assert (cfg["payload_available"], cfg["payload_not_available"]) == (payloads.ONLINE, payloads.OFFLINE)
    assert Draft202012Validator(payloads.load_schema("availability")).is_valid(cfg["payload_available"])


def test_command_topics_are_contract_commands_and_their_payloads_parse():
    commanded = set()
    for _, cfg in configs():
        if "command_topic" not in cfg:
            continue
        assert cfg["command_topic"].startswith(f"{BASE}/set/")
        name = cfg["command_topic"].rsplit("/", 1)[1]
        assert name in COMMANDS
        commanded.add(name)
        if "payload_on" in cfg:  # switch
            assert parse_command(name, cfg["payload_on"].encode()).value is True
            assert parse_command(name, cfg["payload_off"].encode()).value is False
        for option in cfg.get("options", []):  # select
            assert parse_command(name, option.encode()).value == option
        if "payload_press" in cfg:  # button
            parse_command(name, cfg["payload_press"].encode())
    assert commanded == {"paused", "policy", "autoplay", "snapshot_stats", "calibrate", "reset_calibration"}


def test_state_topics_are_contract_topics_and_templates_use_real_fields():
    for _, cfg in configs():
        for key in ("state_topic", "json_attributes_topic"):
            if key not in cfg:
                continue
            suffix = cfg[key].removeprefix(BASE + "/")
            assert suffix in TOPICS and suffix != "event", cfg[key]
            fields = set(payloads.load_schema(suffix)["properties"])
            for template_key in ("value_template", "json_attributes_template"):
                for used in re.findall(r"value_json\.(\w+)", cfg.get(template_key, "")):
                    assert used in fields, (cfg["unique_id"], used)


# Home Assistant's own rules for what it accepts, as of core 2026 (homeassistant/components/sensor/const.py
# DEVICE_CLASS_UNITS and DEVICE_CLASS_STATE_CLASSES; mqtt/sensor.py validate_sensor_state_and_device_class_config;
# entity categories from homeassistant/const.py). A device class used here must be listed, so a new one is checked.
HA_UNITS = {"duration": {"d", "h", "min", "s", "ms"}}
HA_STATE_CLASSES = {"duration": {"measurement", "total", "total_increasing"}, "enum": set()}
HA_CATEGORIES = {"config", "diagnostic"}


def ha_problems(component: str, cfg: dict) -> list[str]:
    """What Home Assistant would refuse (or warn about and ignore) in one discovery config."""
    problems = []
    if cfg.get("entity_category", "config") not in HA_CATEGORIES:
        problems.append(f"entity_category {cfg['entity_category']}")
    if component == "button" and not cfg.get("command_topic"):
        problems.append("a button needs command_topic")
    if component != "sensor":
        return problems
    device_class, state_class, unit = cfg.get("device_class"), cfg.get("state_class"), cfg.get("unit_of_measurement")
    if "options" in cfg:
        if not cfg["options"]:
            problems.append("an empty options list")
        if state_class or unit:
            problems.append("options together with state_class or unit_of_measurement")
        if device_class != "enum":
            problems.append("options without device class enum")
    elif device_class == "enum":
        problems.append("device class enum without options")
    if device_class is not None and device_class not in HA_STATE_CLASSES:
        problems.append(f"device class {device_class} is not in this test's table of HA's rules")
    if device_class in HA_UNITS and unit not in HA_UNITS[device_class]:
        problems.append(f"unit {unit!r} is not one of {sorted(HA_UNITS[device_class])} for {device_class}")
    if device_class in HA_STATE_CLASSES and state_class and state_class not in HA_STATE_CLASSES[device_class]:
        problems.append(f"state class {state_class} is not allowed for {device_class}")
    if state_class not in (None, "measurement", "total", "total_increasing"):
        problems.append(f"unknown state class {state_class}")
    return problems


def test_every_config_passes_home_assistants_rules():
    for topic, cfg in configs():
        assert ha_problems(topic.split("/")[1], cfg) == [], cfg["unique_id"]


@pytest.mark.parametrize("component, cfg, problem", [
    ("sensor", {"device_class": "enum", "options": ["a"], "state_class": "measurement"}, "options together"),
    ("sensor", {"device_class": "enum"}, "enum without options"),
    ("sensor", {"options": ["a"]}, "options without device class enum"),
    ("sensor", {"device_class": "duration", "unit_of_measurement": "minutes"}, "unit 'minutes'"),
    ("sensor", {"device_class": "timestamp"}, "not in this test's table"),
    ("button", {"entity_category": "system"}, "entity_category system"),
])
def test_the_rules_catch_what_home_assistant_refuses(component, cfg, problem):
    assert any(problem in p for p in ha_problems(component, cfg)), ha_problems(component, cfg)


def test_select_and_enum_options_match_the_state_schema():
    props = payloads.load_schema("state")["properties"]
    assert by_key()["policy"]["options"] == props["policy"]["enum"]
    assert by_key()["mood"]["options"] == props["mood"]["enum"]


def test_discovery_prefix_and_base_are_used_as_given():
    for topic, cfg in configs("kitchen", prefix="home/moods", discovery_prefix="ha"):
        assert topic.startswith("ha/") and cfg["availability_topic"] == "home/moods/kitchen/availability"


def test_returned_configs_are_independent_copies():
    first = configs()
    first[0][1]["options"].append("joy")
    assert "joy" not in configs()[0][1]["options"]


def test_cleanup_empties_the_same_topics():
    cleanup = ha.cleanup_messages(topics())
    assert [t for t, _ in cleanup] == [t for t, _ in configs()]
    assert all(payload == b"" for _, payload in cleanup)


def test_home_assistant_birth_message():
    assert topics().ha_status == "homeassistant/status"
    assert ha.is_ha_online("homeassistant/status", b"online", topics())
    assert ha.is_ha_online("ha/status", b"online\n", topics(discovery_prefix="ha"))
    assert not ha.is_ha_online("homeassistant/status", b"offline", topics())
    assert not ha.is_ha_online("moodcast/livingroom/status", b"online", topics())


# -- templates render real payloads --------------------------------------------------------------

@pytest.mark.parametrize("mood", list(MOODS) + ["no_face", "uncertain"])
def test_mood_sensor_renders_every_mood_within_its_options(mood):
    cfg = by_key()["mood"]
    state = a_state(mood=mood)
    assert render(cfg["value_template"], state) == mood and mood in cfg["options"]
    attributes = json.loads(render(cfg["json_attributes_template"], state))
    assert attributes == {"scores": state["scores"], "since": state["since"]}


def test_state_templates():
    c = by_key()
    assert render(c["confidence"]["value_template"], a_state(confidence=0.8123)) == "81.2"
    assert render(c["confidence"]["value_template"], a_state(mood="no_face", confidence=0)) == "0.0"
    assert render(c["face"]["value_template"], a_state(faces=2)) == c["face"]["payload_on"]
    assert render(c["face"]["value_template"], a_state(faces=0)) == c["face"]["payload_off"]
    for key, field in (("paused", "paused"), ("autoplay", "autoplay")):
        assert render(c[key]["value_template"], a_state(**{field: True})) == c[key]["state_on"]
        assert render(c[key]["value_template"], a_state(**{field: False})) == c[key]["state_off"]
    for policy in ("match", "uplift", "off"):
        assert render(c["policy"]["value_template"], a_state(policy=policy)) == policy


def test_recommendation_templates():
    c = by_key()
    rec = a_recommendation()
    assert render(c["music"]["value_template"], rec) == "Sunday Morning Lift"
    assert render(c["video"]["value_template"], rec) == "Feel-good mix"
    assert json.loads(render(c["music"]["json_attributes_template"], rec))["url"] == rec["music"][0]["url"]
    assert json.loads(render(c["video"]["json_attributes_template"], rec))["video_id"] == "aBcDeFgHiJ0"
    empty = a_recommendation(music=False, videos=False)
    assert render(c["music"]["value_template"], empty) == render(c["video"]["value_template"], empty) == "none"
    assert json.loads(render(c["music"]["json_attributes_template"], empty)) == {}
    assert len(render(c["music"]["value_template"], a_recommendation(title="x" * 400))) == 255  # HA's state limit


def test_minutes_sensors_render_the_history_as_numbers_for_a_duration_in_minutes():
    from moodcast.service.history import Day

    day = Day("2026-05-01")
    day.count("happy", True, 125.0)
    history = payloads.stamp(payloads.History(day.summary()).body(), NOW)
    Draft202012Validator(payloads.load_schema("history")).validate(history)
    for mood in MOODS:
        cfg = by_key()[f"{mood}_minutes_today"]
        assert (cfg["device_class"], cfg["unit_of_measurement"], cfg["state_class"]) == (
            "duration", "min", "total_increasing")
        assert float(render(cfg["value_template"], history)) == (2.0 if mood == "happy" else 0.0)


def test_stats_templates():
    c = by_key()
    stats = payloads.stats(now=NOW, fps=4.9, cpu_percent=41.5, rss_mb=1.0, uptime_s=1.0, frames=1, dropped_frames=0,
                           mqtt_reconnects=0, stage_ms=dict.fromkeys(
                               ("capture", "detect", "preprocess", "classify", "track", "publish"), 0.0))
    assert (render(c["fps"]["value_template"], stats), render(c["cpu"]["value_template"], stats)) == ("4.9", "41.5")


# -- the example dashboard -------------------------------------------------------------------------

def test_lovelace_uses_exactly_the_discovered_entities():
    used = set(re.findall(r"\b(?:sensor|binary_sensor|switch|select|button)\.moodcast_livingroom_\w+",
                          LOVELACE.read_text(encoding="utf-8")))
    assert used == {cfg["default_entity_id"] for _, cfg in configs()}


def test_every_config_has_the_default_entity_id_that_docs_mqtt_md_lists():
    # From Home Assistant 2026.4 default_entity_id alone fixes the entity id: it must not drift from the docs.
    documented = re.findall(r"^\| `((?:sensor|binary_sensor|switch|select|button)\.moodcast_livingroom_\w+)` — ",
                            DOCS.read_text(encoding="utf-8"), re.M)
    published = [cfg.get("default_entity_id") for _, cfg in configs()]
    assert None not in published and sorted(published) == sorted(documented)
    assert all(cfg["default_entity_id"].startswith(f"{topic.split('/')[1]}.") for topic, cfg in configs())


def test_lovelace_entities_cards_name_every_row():
    yaml = pytest.importorskip("yaml")
    cards = yaml.safe_load(LOVELACE.read_text(encoding="utf-8"))["views"][0]["cards"]
    rows = [row for card in cards if card["type"] == "entities" for row in card["entities"]]
    assert rows and all(row.get("name") for row in rows), "unnamed rows are cut off (moodcast livingroom Analys…)"


def test_command_messages_read_as_docs_mqtt_md_shows_them():
    from moodcast.service.daemon import applied_message

    assert '"message": "policy set to uplift"' in DOCS.read_text(encoding="utf-8")
    assert applied_message(parse_command("policy", b"uplift")) == "policy set to uplift"
    assert applied_message(parse_command("pause", b"")) == "privacy pause on"
    assert applied_message(parse_command("autoplay", b"OFF")) == "autoplay off"
    assert applied_message(parse_command("snapshot_stats", b"")) == "stats published"


def test_lovelace_is_valid_yaml():
    yaml = pytest.importorskip("yaml")
    dashboard = yaml.safe_load(LOVELACE.read_text(encoding="utf-8"))
    assert dashboard["views"][0]["cards"]


# -- on a real broker ------------------------------------------------------------------------------

def _retained_under(broker, pattern: str) -> dict[str, bytes]:
    """What a late subscriber gets for `pattern`; a sentinel proves the retained burst is over."""
    with Subscriber(broker, [pattern, "sentinel/done"]) as sub:
        publish(broker, "sentinel/done", b"1")
        sub.wait_for("sentinel/done")
        return {t: msgs[0].payload for t, msgs in sub.messages.items() if t != "sentinel/done" and msgs[0].retain}


def test_discovery_round_trips_through_mosquitto_and_cleanup_removes_it(mosquitto):
    messages = configs()
    for topic, cfg in messages:
        publish(mosquitto, topic, payloads.encode(cfg), qos=1, retain=True)
    retained = _retained_under(mosquitto, "homeassistant/#")
    assert {t: json.loads(p) for t, p in retained.items()} == dict(messages)

    for topic, payload in ha.cleanup_messages(topics()):
        publish(mosquitto, topic, payload, qos=1, retain=True)
    assert _retained_under(mosquitto, "homeassistant/#") == {}
