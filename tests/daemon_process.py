"""Run the real `moodcast run` as a child process against a test broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from bench.mosquitto import Mosquitto
from bench.toml_file import write_toml

# seconds until a new daemon's first message: imports alone took minutes on a loaded 2-core box
STARTUP = 300
STOP = 90  # ...and after a clean stop, the interpreter's teardown (LiteRT, OpenCV) can take 20 s there


def write_config(path: Path, broker: Mosquitto | None, **sections) -> Path:
    """A config file; `sections` maps "camera" -> {"path": ...}, "mqtt.tls" -> {...}."""
    merged = {"mqtt": {"enabled": False}} if broker is None else {
        "mqtt": {"host": broker.host, "port": broker.port, "device_id": "testcam", "reconnect_min_s": 0.2,
                 "reconnect_max_s": 1.0, "keepalive_s": 5}}
    merged.setdefault("state", {"dir": str(path.parent / "state")})
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    return write_toml(path, merged)


class DaemonProcess:
    """Its output is read as it comes: a daemon that logs a lot must never stall on a full pipe."""

    def __init__(self, config: Path, *args: str, env: dict | None = None):
        self.args = ("run", "-c", str(config), *args)
        self.proc = subprocess.Popen([sys.executable, "-m", "moodcast.cli", "run", "-c", str(config), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._lines.extend, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout)

    def output(self) -> str:
        """Everything it wrote; kills it first if it still runs. Asking again gives the same text."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        return "".join(self._lines)

    def running(self) -> bool:
        return self.proc.poll() is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.running():
            self.proc.kill()
        self.proc.wait(10)


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moodcast.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})
