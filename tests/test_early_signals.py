"""Signals during `moodcast run`'s start-up (imports, model load): remembered, never fatal."""

import signal
import time

from bench.mosquitto import Subscriber
from tests.daemon_process import STARTUP, STOP, write_config
from tests.media import SAMPLES

BASE = "moodcast/testcam"
LOOP = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png"), "realtime": True, "loop": True}


def wait_until_caught(pid: int, sig: int, timeout: float = 120) -> None:
    """Until the process has a handler for `sig` (SigCgt in /proc): the earliest moment one helps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/status") as f:
            caught = int(next(line for line in f if line.startswith("SigCgt:")).split()[1], 16)
        if caught >> (sig - 1) & 1:
            return
        time.sleep(0.005)
    raise AssertionError(f"no handler for signal {sig} within {timeout} s")


def test_sighup_during_start_up_is_a_reload_not_death(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with Subscriber(mosquitto, [f"{BASE}/#"]) as sub, daemon_process(config) as daemon:
        wait_until_caught(daemon.proc.pid, signal.SIGHUP)
        daemon.signal(signal.SIGHUP)
        # a frame went through the loop, so the pending reload was carried out before it
        sub.wait_for(f"{BASE}/event", lambda m: m.json()["type"] == "face_found", timeout=STARTUP)
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(STOP) == 0
        out = daemon.output()
    assert "configuration reloaded" in out and "Traceback" not in out


def test_sigint_during_start_up_stops_cleanly(tmp_path, mosquitto, daemon_process):
    config = write_config(tmp_path / "config.toml", mosquitto, camera=LOOP)
    with daemon_process(config) as daemon:
        # Python catches SIGINT itself from its first instant; SIGHUP is caught once ours are installed
        wait_until_caught(daemon.proc.pid, signal.SIGHUP)
        daemon.signal(signal.SIGINT)
        code = daemon.wait(STARTUP + STOP)
        out = daemon.output()
    assert code == 0, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
