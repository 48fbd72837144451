"""The sd_notify protocol against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from moodcast.notify import Notifier

REPO = Path(__file__).resolve().parents[1]


class FakeSystemd:
    """The receiving end of $NOTIFY_SOCKET: collects datagrams like systemd's notify socket."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + path[1:] if path.startswith("@") else path)
        self.path = path

    def recv(self, timeout: float = 2.0) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None

    def drain(self, duration: float) -> list[tuple[float, str]]:
        """Every datagram received within `duration` seconds, with its arrival time."""
        end = time.monotonic() + duration
        got = []
        while (left := end - time.monotonic()) > 0:
            msg = self.recv(left)
            if msg is not None:
                got.append((time.monotonic(), msg))
        return got

    def flush(self) -> list[str]:
        """Datagrams already queued, without waiting."""
        got = []
        while (msg := self.recv(0.001)) is not None:
            got.append(msg)
        return got

    def close(self):
        self.sock.close()


@pytest.fixture
def systemd(tmp_path):
    fake = FakeSystemd(str(tmp_path / "notify.sock"))
    yield fake
    fake.close()


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_ready_status_stopping_reach_the_socket(systemd, clean_env):
    clean_env.setenv("NOTIFY_SOCKET", systemd.path)
    n = Notifier()
    assert n.enabled
    n.ready("mood=neutral 5.0 fps")
    assert systemd.recv() == "READY=1\nSTATUS=mood=neutral 5.0 fps"
    n.status("camera unavailable, retrying\nin 2 s")
    assert systemd.recv() == "STATUS=camera unavailable, retrying in 2 s"  # one line, no second KEY=
    n.reloading()
    reloading = systemd.recv()
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert int(reloading.split("MONOTONIC_USEC=")[1]) > 0
    n.stopping()
    assert systemd.recv() == "STOPPING=1"


def test_abstract_socket_address(clean_env):
    name = f"@moodcast-test-{uuid.uuid4().hex}"
    fake = FakeSystemd(name)
    try:
        clean_env.setenv("NOTIFY_SOCKET", name)
        Notifier().ready()
        assert fake.recv() == "READY=1"
    finally:
        fake.close()


def test_explicit_path_overrides_environment(systemd, clean_env, tmp_path):
    clean_env.setenv("NOTIFY_SOCKET", str(tmp_path / "elsewhere.sock"))
    Notifier(systemd.path).status("x")
    assert systemd.recv() == "STATUS=x"


def test_without_notify_socket_everything_is_a_no_op(clean_env):
    n = Notifier()
    assert not n.enabled and n.watchdog_interval_s is None
    n.ready("x"), n.status("x"), n.watchdog(), n.reloading(), n.stopping()  # nothing to send to, no error


def test_a_vanished_socket_does_not_raise(systemd, clean_env, caplog):
    n = Notifier(systemd.path)
    systemd.close()
    os.unlink(systemd.path)
    n.ready()
    n.status("still alive")
    assert sum("cannot notify systemd" in r.message for r in caplog.records) == 1  # warned once


def test_watchdog_interval_is_half_of_watchdog_usec(systemd, clean_env):
    clean_env.setenv("WATCHDOG_USEC", "3000000")
    assert Notifier(systemd.path).watchdog_interval_s == pytest.approx(1.5)
    clean_env.setenv("WATCHDOG_PID", str(os.getpid()))
    assert Notifier(systemd.path).watchdog_interval_s == pytest.approx(1.5)


@pytest.mark.parametrize("usec, pid", [(None, None), ("0", None), ("junk", None), ("3000000", "1")])
def test_no_watchdog_when_not_ours(systemd, clean_env, usec, pid):
    if usec is not None:
        clean_env.setenv("WATCHDOG_USEC", usec)
    if pid is not None:
        clean_env.setenv("WATCHDOG_PID", pid)  # meant for another process
    n = Notifier(systemd.path)
    assert n.watchdog_interval_s is None
    n.watchdog()
    assert systemd.recv(timeout=0.2) is None


def test_watchdog_is_rate_limited_to_the_interval(systemd, clean_env):
    clean_env.setenv("WATCHDOG_USEC", "400000")  # ping at most every 0.2 s
    n = Notifier(systemd.path)
    start = time.monotonic()
    pings = []
    while time.monotonic() - start < 1.0:  # a 100 fps frame loop
        n.watchdog()
        pings += [(time.monotonic(), msg) for msg in systemd.flush()]
        time.sleep(0.01)
    assert all(msg == "WATCHDOG=1" for _, msg in pings)
    assert 4 <= len(pings) <= 6, len(pings)  # ~1.0 s / 0.2 s, not 100
    gaps = [b - a for (a, _), (b, _) in zip(pings, pings[1:])]
    assert min(gaps) >= 0.15


# A frame loop shaped like the daemon's: ready after setup, watchdog after every processed frame,
# a source that stops delivering frames, stopping() on SIGTERM. It runs as its own process so the
# signal and WATCHDOG_PID are real.
FRAME_LOOP = textwrap.dedent("""
    import signal, sys, time, threading
    from moodcast.notify import Notifier

    stalled = threading.Event()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: stalled.set())   # the test's way to stall the camera

    notifier = Notifier()
    notifier.ready("mood=no_face")

    def read_frame():
        while stalled.is_set() and not stop.is_set():   # a read that never returns
            time.sleep(0.01)
        time.sleep(0.02)

    while not stop.is_set():
        read_frame()
        if not stop.is_set():
            notifier.watchdog()
    notifier.stopping()
""")


def test_frame_loop_protocol_ready_watchdog_stall_stopping(systemd, clean_env):
    env = dict(os.environ, NOTIFY_SOCKET=systemd.path, WATCHDOG_USEC="200000",
               PYTHONPATH=str(REPO / "daemon"))
    proc = subprocess.Popen([sys.executable, "-c", FRAME_LOOP], env=env)
    try:
        assert systemd.recv(timeout=10) == "READY=1\nSTATUS=mood=no_face"
        flowing = systemd.drain(1.0)
        assert [m for _, m in flowing] == ["WATCHDOG=1"] * len(flowing)
        assert len(flowing) >= 5  # every ~0.1 s while frames flow

        proc.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        systemd.flush()  # pings sent before the stall took hold
        assert systemd.drain(1.0) == []  # stalled source: no WATCHDOG, so systemd's watchdog fires

        proc.send_signal(signal.SIGTERM)
        assert systemd.recv(timeout=5) == "STOPPING=1"
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
