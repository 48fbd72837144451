"""The real daemon as a child process, a real broker, a systemd-style READY socket, /proc sampling.

Times are taken on this process's monotonic clock, which on Linux is the same clock the child's
time.monotonic() reads, so "the replay started" (READY arrives just before the camera loop takes
its start time) and "the event arrived at a subscriber" are directly comparable.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.toml_file import write_toml

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def start_broker(directory: Path):
    """A real Mosquitto (as the tests use) if installed, else the in-process amqtt broker."""
    from bench.mosquitto import MOSQUITTO, Mosquitto

    if Path(MOSQUITTO).exists():
        broker = Mosquitto(directory).start()
        return broker, "mosquitto", broker.kill
    from moodcast.mqtt.embedded_broker import EmbeddedBroker
    broker = EmbeddedBroker().start()
    broker.host = "127.0.0.1"
    return broker, "amqtt (in-process: its CPU is the bench's, not the daemon's)", broker.stop


class NotifySocket:
    """An AF_UNIX datagram socket standing in for systemd: records (monotonic time, message)."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self.ready = threading.Event()
        self._running = True
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while self._running:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            text = data.decode(errors="replace")
            self.messages.append((now, text))
            if "READY=1" in text.splitlines():
                self.ready.set()

    def ready_at(self) -> float | None:
        return next((t for t, m in self.messages if "READY=1" in m.splitlines()), None)

    def close(self) -> None:
        self._running = False
        self.sock.close()


class Recorder:
    """A paho subscriber that keeps (arrival monotonic time, topic, JSON or text) for every message."""

    def __init__(self, host: str, port: int, topics: list[str]):
        self.messages: list[tuple[float, str, object]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{secrets.token_hex(4)}")
        self.client.on_connect = lambda c, *_: c.subscribe([(t, 1) for t in topics])
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("bench: subscriber got no SUBACK")

    def _on_message(self, client, userdata, msg) -> None:
        now = time.monotonic()  # first thing: the arrival time is what we measure
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = msg.payload.decode(errors="replace")
        self.messages.append((now, msg.topic, body))

    def events(self, kind: str) -> list[tuple[float, dict]]:
        return [(t, b) for t, topic, b in self.messages
                if topic.endswith("/event") and isinstance(b, dict) and b.get("type") == kind]

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Daemon:
    """`moodcast run -c CONFIG` with NOTIFY_SOCKET set; start-to-READY timed from just before spawning."""

    def __init__(self, workdir: Path, name: str, camera: dict, broker_host: str, broker_port: int,
                 extra: dict | None = None):
        self.name, self.dir = name, workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.device_id = f"bench_{name}"
        sections = {"camera": {"source": "replay", **camera},
                    "mqtt": {"host": broker_host, "port": broker_port, "device_id": self.device_id},
                    "state": {"dir": str(self.dir / "state")}, **(extra or {})}
        self.config = write_toml(self.dir / "config.toml", sections)
        self.notify = NotifySocket(self.dir / "notify.sock")
        self.log = (self.dir / "daemon.log").open("w")
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen([sys.executable, "-m", "moodcast.cli", "run", "-c", str(self.config)],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
                                     env={**os.environ, "NOTIFY_SOCKET": self.notify.path, "PYTHONUNBUFFERED": "1"})

    @property
    def base(self) -> str:
        return f"moodcast/{self.device_id}"

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from spawn to READY=1."""
        if not self.notify.ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"bench: daemon {self.name} not READY within {timeout}s; see {self.log.name}")
        return self.notify.ready_at() - self.spawned_at

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE / 2**20

    def cpu_s(self) -> float:
        """User + system CPU seconds of the daemon so far (all its threads)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.notify.close()
        self.log.close()
        return self.proc.returncode
