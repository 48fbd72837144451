"""The command line as a newcomer meets it: real `moodcast` processes, real files, real brokers."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.mosquitto import publish

ROOT = Path(__file__).resolve().parents[1]


def moodcast(*args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moodcast.cli", *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def write_config(tmp_path: Path, text: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[state]\ndir = "{tmp_path / "state"}"\n{text}')
    return path


def test_readme_names_a_moodcast_that_exists_after_make_run():
    readme = (ROOT / "README.md").read_text()
    assert ".venv/bin/moodcast" in readme and "source .venv/bin/activate" in readme
    assert (Path(sys.executable).parent / "moodcast").is_file(), "the venv must have the moodcast entry point"
    bare = [line for block in re.findall(r"```sh\n(.*?)```", readme, re.S) for line in block.splitlines()
            if re.match(r"\s*moodcast ", line)]
    assert not bare, f"README shell blocks run a bare `moodcast` that is not on the PATH: {bare}"


def test_config_path_is_accepted_as_a_positional_argument(tmp_path):
    path = write_config(tmp_path)
    result = moodcast("check-config", str(path))
    assert result.returncode == 0, result.stderr
    assert f"{path}: OK" in result.stdout


@pytest.mark.skipif(Path("/etc/moodcast/config.toml").exists(), reason="an installed moodcast's config is the default")
def test_outside_the_checkout_without_a_file_the_error_says_how_to_name_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MOODCAST_CONFIG"}
    result = moodcast("check-config", cwd=tmp_path, env=env)
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert result.stderr.startswith("moodcast: no configuration file: none given, $MOODCAST_CONFIG is not set")
    assert "name one: moodcast check-config -c FILE" in result.stderr and result.stderr.count("\n") == 1


def test_a_stray_argument_shows_the_subcommands_usage(tmp_path):
    result = moodcast("check-config", str(write_config(tmp_path)), "extra")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["usage: moodcast check-config [-h] [-c FILE] [--strict] [--online] [FILE]",
                                          "moodcast check-config: error: unrecognized arguments: extra"]


def test_two_different_config_files_are_refused(tmp_path):
    result = moodcast("check-config", "-c", "a.toml", "b.toml")
    assert result.returncode == 2
    assert "two configuration files given: -c a.toml and b.toml" in result.stderr


def fake_offpi_picamera2(tmp_path: Path) -> dict:
    """picamera2 as it is off a Raspberry Pi: installed, but importing it fails on libcamera."""
    (tmp_path / "picamera2.py").write_text("raise ImportError(\"No module named 'libcamera'\")\n")
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_check_config_fails_when_picamera2_is_not_importable(tmp_path):
    path = write_config(tmp_path, '[camera]\nsource = "picamera2"\n')
    result = moodcast("check-config", str(path), env=fake_offpi_picamera2(tmp_path))
    assert result.returncode == 78
    assert "FAILED: 1 error(s)" in result.stdout
    assert ('moodcast: error: config.toml: [camera] source = "picamera2": picamera2 is not importable '
            "(No module named 'libcamera')") in result.stderr


@pytest.mark.parametrize("section, warning", [
    ('[camera]\ndevice = "/dev/video-moodcast-absent"\n',
     "config.toml: [camera] device: /dev/video-moodcast-absent does not exist"),
    ('[camera]\ndevice = "/dev/video-moodcast-absent"\n[mqtt]\nusername = "bob"\n',
     'config.toml: [mqtt] username = "bob" but no password is stored'),
])
def test_check_config_warns_and_strict_fails(tmp_path, section, warning):
    path = write_config(tmp_path, section)
    env = {k: v for k, v in os.environ.items() if k not in ("MOODCAST_MQTT_PASSWORD", "CREDENTIALS_DIRECTORY")}
    lenient = moodcast("check-config", str(path), env=env)
    assert lenient.returncode == 0, lenient.stderr
    assert f"{path}: OK, but" in lenient.stdout and f"moodcast: warning: {warning}" in lenient.stderr
    strict = moodcast("check-config", "--strict", str(path), env=env)
    assert strict.returncode == 78
    assert "FAILED (--strict)" in strict.stdout and warning in strict.stderr


def test_a_mistyped_mood_table_is_an_error(tmp_path):
    result = moodcast("check-config", str(write_config(tmp_path, '[recommendations.moods.hapy]\nvolume = 40\n')))
    assert result.returncode == 78
    assert result.stderr.startswith('moodcast: config.toml: [recommendations.moods.hapy]: no mood of that name, '
                                    'and no uplift step uses it (did you mean "happy"?')


def test_an_uplift_step_of_your_own_is_not_a_typo(tmp_path):
    path = write_config(tmp_path, '[recommendations.moods.sad]\nuplift = ["relax", "happy"]\n'
                                  '[recommendations.moods.relax]\nyoutube_search = ["rain sounds"]\n')
    result = moodcast("check-config", "-c", str(path))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("model, message", [
    (None, '[detector] model: kind = "yunet" needs the path of a YuNet model file '
           "(face_detection_yunet_2023mar.onnx"),
    ("/nonexistent/face_detection_yunet_2023mar.onnx",
     "[detector] model: /nonexistent/face_detection_yunet_2023mar.onnx: no such file"),
])
def test_yunet_without_its_model_exits_78_naming_the_file(tmp_path, command, model, message):
    detector = '[detector]\nkind = "yunet"\n' + (f'model = "{model}"\n' if model else "")
    result = moodcast(command, str(write_config(tmp_path, detector)))
    assert result.returncode == 78
    assert f"moodcast: config.toml: {message}" in result.stderr
    assert "Traceback" not in result.stderr


class Lines:
    """A running `moodcast` process whose output lines are collected by a thread as they come."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([sys.executable, "-m", "moodcast.cli", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def wait_for(self, predicate, timeout: float = 180) -> list[str]:
        deadline = time.monotonic() + timeout
        while not predicate(list(self.lines)):
            assert time.monotonic() < deadline, f"timed out; output so far: {self.lines}"
            assert self.proc.poll() is None, f"exited {self.proc.returncode}: {self.lines}"
            time.sleep(0.1)
        return list(self.lines)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(20)


def test_watch_without_a_broker_says_why_and_keeps_retrying(tmp_path, mosquitto):
    mosquitto.stop()
    path = write_config(tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\ndevice_id = "cam"\n'
                                  "reconnect_min_s = 0.2\n")
    watch = Lines("watch", str(path))
    try:
        refused = f"cannot connect to 127.0.0.1:{mosquitto.port}: Connection refused; retrying in"
        watch.wait_for(lambda lines: sum(refused in line for line in lines) >= 2)
        mosquitto.start()
        publish(mosquitto, "moodcast/cam/availability", "online", retain=True)
        watch.wait_for(lambda lines: any("cam" in line and line.rstrip().endswith("online") for line in lines))
    finally:
        assert watch.stop() in (0, 130)


def test_watch_says_when_the_broker_goes_away_and_comes_back(tmp_path, mosquitto):
    path = write_config(tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\ndevice_id = "cam"\n'
                                  "reconnect_min_s = 0.2\n")
    watch = Lines("watch", str(path))
    try:
        publish(mosquitto, "moodcast/cam/availability", "online", retain=True)
        watch.wait_for(lambda lines: any(line.rstrip().endswith("online") for line in lines))
        mosquitto.kill()
        watch.wait_for(lambda lines: any(f"cannot reconnect to 127.0.0.1:{mosquitto.port}; retrying" in line
                                         for line in lines))
        mosquitto.start()
        publish(mosquitto, "moodcast/cam/availability", "offline", retain=True)
        watch.wait_for(lambda lines: any(line.rstrip().endswith("offline") for line in lines))
    finally:
        assert watch.stop() in (0, 130)
    assert any("connection to 127.0.0.1" in line and "lost" in line for line in watch.lines), watch.lines


def test_watch_names_an_unknown_host(tmp_path):
    watch = Lines("watch", str(write_config(tmp_path, '[mqtt]\nhost = "no-such-broker.invalid"\n')))
    try:
        lines = watch.wait_for(lambda lines: any("retrying in" in line for line in lines))
    finally:
        watch.stop()
    assert any(line.startswith("cannot connect to no-such-broker.invalid:1883: ") for line in lines), lines


def test_recommend_play_without_spotify_says_so_and_fails(tmp_path):
    result = moodcast("recommend", "happy", "--play", str(write_config(tmp_path)))
    assert result.returncode == 78
    assert result.stdout.startswith("happy: policy uplift\n")
    assert ("moodcast: --play: playback not attempted: Spotify is off (see the \"Spotify: off\" line above)"
            in result.stderr)


REPLAY_ONLY = "[mqtt]\nenabled = false\n"


@pytest.mark.parametrize("name, content, message", [
    ("absent.mp4", None, "absent.mp4: no such file or directory"),
    ("broken.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20, "broken.mp4: not a readable video or image"),
])
def test_a_bad_replay_fails_before_running_in_one_line(tmp_path, name, content, message):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    result = moodcast("run", str(write_config(tmp_path, REPLAY_ONLY)), "--replay", str(tmp_path / name))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"moodcast: {tmp_path / name}".replace(name, message)
    assert "running" not in result.stderr and "moov" not in result.stderr and "Traceback" not in result.stderr


def test_the_end_of_a_replay_is_announced(tmp_path):
    sample = ROOT / "daemon/moodcast/samples/01_astronaut.png"
    result = moodcast("run", str(write_config(tmp_path, REPLAY_ONLY)), "--replay", str(sample), "--fast")
    assert result.returncode == 0, result.stderr
    # one still is in view for image_seconds = 3 at max_fps = 5
    assert f"replay finished: 15 frames analysed from {sample}" in result.stderr.splitlines()[-1]


def test_fast_without_replay_is_refused(tmp_path):
    result = moodcast("run", str(write_config(tmp_path, REPLAY_ONLY)), "--fast")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == "moodcast run: error: --fast only applies to --replay PATH"


def test_make_help_lists_every_target_and_no_makefile_code():
    result = subprocess.run(["make", "-s", "-C", str(ROOT)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert ":=" not in result.stdout and "SHELL" not in result.stdout
    for target in ("run", "test", "model", "eval", "bench", "clean"):
        assert f"make {target} " in result.stdout, f"make help does not list {target}"


def test_make_test_and_ci_share_one_list_of_system_packages():
    makefile, ci = (ROOT / "Makefile").read_text(), (ROOT / ".ci/run").read_text()
    packages = re.search(r"^TEST_PACKAGES := (.*)$", makefile, re.M).group(1).split()
    assert "libsystemd-dev" in packages and "mosquitto" in packages
    # CI may upgrade (its machine is thrown away), but only the Makefile's list: no second list to drift
    assert "make -s print-test-packages" in ci and "make test" in ci
    assert not re.search(r"apt-get install[^\n]*(mosquitto|shellcheck)", ci), "a second package list in .ci/run"
    assert re.search(r"^test: system-deps ", makefile, re.M)


def test_litert_chatter_goes_through_logging(tmp_path):
    sample = ROOT / "daemon/moodcast/samples/01_astronaut.png"
    quiet = moodcast("run", str(write_config(tmp_path, REPLAY_ONLY)), "--replay", str(sample), "--fast")
    assert quiet.returncode == 0, quiet.stderr
    assert "XNNPACK" not in quiet.stderr
    verbose = moodcast("run", str(write_config(tmp_path, REPLAY_ONLY + '[logging]\nlevel = "debug"\n')),
                       "--replay", str(sample), "--fast")
    assert re.search(r"^\d\d:\d\d:\d\d DEBUG litert: INFO: Created TensorFlow Lite XNNPACK delegate",
                     verbose.stderr, re.M), verbose.stderr


def test_native_stderr_lines_are_logged_by_level(caplog):
    from moodcast.logs import native_stderr_to_log

    with caplog.at_level(logging.DEBUG, logger="moodcast.native"), native_stderr_to_log("moodcast.native"):
        os.write(2, b"INFO: chatter\nsomething went wrong\n")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "INFO: chatter"), (logging.WARNING, "something went wrong")]


def test_no_test_writes_past_pytests_capture():
    offenders = [p.name for p in (ROOT / "tests").glob("*.py") if p.name != Path(__file__).name
                 and any(s in p.read_text() for s in ("capsys.disabled(", "sys.__stdout__", "sys.__stderr__"))]
    assert not offenders, f"these tests print into pytest's -q output; print normally (see -rP): {offenders}"


def test_the_docs_agree_on_min_face_px():
    from moodcast import config

    default = config.parse({}).detector.min_face_px
    texts = {name: (ROOT / name).read_text() for name in ("README.md", "config.toml", "docs/install.md",
                                                           "docs/performance.md")}
    assert f"at least {default} pixels wide (`[detector] min_face_px`, the default)" in texts["docs/install.md"]
    assert re.search(rf"^min_face_px = {default} ", texts["config.toml"], re.M)
    assert f"`[detector] min_face_px` ({default} px" in texts["README.md"]
    # one measurement (Haar detection CPU, 40 against 60 px), said the same way everywhere
    assert "about 30 % more detection CPU than\n  60" in texts["docs/performance.md"]
    assert "haar, 40 costs ~30 % more detection CPU than 60" in " ".join(texts["config.toml"].replace("#", "").split())
    for name, text in texts.items():
        assert "2–3 m" not in text and "~40 % more CPU" not in text and "saves about 20 %" not in text, name


def test_the_docs_agree_on_what_a_reload_applies():
    from moodcast.vision.camera import LIVE_KEYS

    readme = " ".join((ROOT / "README.md").read_text().split())
    install = " ".join((ROOT / "docs/install.md").read_text().split())
    said = {"README.md": re.search(r"`SIGHUP` reloads (.*?) without", readme).group(1),
            "docs/install.md": re.search(r"\*\*Reload\.\*\* .*?\(SIGHUP\) applies (.*?) at once", install).group(1)}
    for name, text in said.items():
        keys = {re.sub(r"^\[?camera(\.|\] )", "", n).strip("[]") for n in re.findall(r"`([^`]+)`", text)}
        assert keys == {"mood", "detector", "logging", *LIVE_KEYS}, (name, text)


def test_the_readme_names_every_home_assistant_entity():
    from moodcast.mqtt.homeassistant import ENTITIES

    readme = (ROOT / "README.md").read_text()
    listed = readme.split("Home Assistant discovery creates a device with these")[1].split("\n\n")[1]
    assert f"these {len(ENTITIES)} entities" in readme
    missing = [e.config["name"] for e in ENTITIES if e.config["name"] not in listed]
    assert not missing, f"README's entity list leaves out {missing}"


def test_install_md_tunes_the_default_detector_not_haar():
    from moodcast import config

    assert config.parse({}).detector.kind == "blazeface"
    text = " ".join((ROOT / "docs/install.md").read_text().split())
    assert "lower `[detector] score_threshold`" in text
    for mention in re.finditer("min_neighbors", text):
        assert "haar" in text[max(0, mention.start() - 60):mention.start()], text[mention.start() - 200:mention.end()]
