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

from moodcast.service.notify import Notifier

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
        except TimeoutError:
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
    gaps = [b - a for (a, _), (b, _) in zip(pings, pings[1:], strict=False)]
    assert min(gaps) >= 0.15


# A frame loop shaped like the daemon's: ready after setup, watchdog after every processed frame,
# a source that stops delivering frames, stopping() on SIGTERM. It runs as its own process so the
# signal and WATCHDOG_PID are real.
FRAME_LOOP = textwrap.dedent("""
    import signal, sys, time, threading
    from moodcast.service.notify import Notifier

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


# --- the real daemon under the fake systemd ---------------------------------------------------

# Stands in for Raspberry Pi OS's picamera2 (the camera driver is the one part that cannot run
# here): it serves a real photo at ~30 fps, and its capture_array() hangs, like a wedged driver
# read, while the file named by $FAKE_CAMERA_STALL exists. Everything above it is the daemon's own.
FAKE_PICAMERA2 = textwrap.dedent('''
    import os, time
    import cv2

    class Picamera2:
        def __init__(self, camera_num=0):
            self.image = cv2.imread(os.environ["FAKE_CAMERA_IMAGE"], cv2.IMREAD_COLOR)

        def create_video_configuration(self, main):
            return {"main": main}

        def configure(self, config):
            self.image = cv2.resize(self.image, config["main"]["size"])

        def start(self):
            pass

        def capture_array(self, name="main"):
            while os.path.exists(os.environ["FAKE_CAMERA_STALL"]):
                time.sleep(0.05)
            time.sleep(1 / 30)
            return self.image.copy()

        def close(self):
            pass
''')


def kinds(messages: list[str]) -> list[str]:
    return [m.split("=", 1)[0] for m in messages]


def test_real_daemon_ready_watchdog_stall_reload_stopping(tmp_path, systemd, clean_env, daemon_process):
    from tests.daemon_process import write_config
    from tests.media import SAMPLES

    (tmp_path / "fake" / "picamera2").mkdir(parents=True)
    (tmp_path / "fake" / "picamera2" / "__init__.py").write_text(FAKE_PICAMERA2)
    stall = tmp_path / "stall"
    config = write_config(tmp_path / "config.toml", None, camera={
        "source": "picamera2", "width": 640, "height": 480, "max_fps": 10.0, "read_timeout_s": 0.5})
    env = {"NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "1000000",  # ping every 0.5 s
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "fake"), str(REPO / "daemon")]),
           "FAKE_CAMERA_IMAGE": str(SAMPLES / "01_astronaut.png"), "FAKE_CAMERA_STALL": str(stall)}

    with daemon_process(config, env=env) as daemon:
        ready = systemd.recv(timeout=120)
        assert ready is not None and ready.startswith("READY=1\nSTATUS=model "), (ready, daemon.output())
        assert "camera picamera2" in ready

        flowing = [m for _, m in systemd.drain(3.0)]
        pings = kinds(flowing).count("WATCHDOG")
        assert 3 <= pings <= 8, flowing  # every ~0.5 s, not once per frame (~30 frames)
        assert any(m.startswith("STATUS=mood=") and m.endswith(" fps") for m in flowing), flowing

        stall.touch()  # the camera read hangs from now on
        during = systemd.drain(4.5)
        end = time.monotonic()
        notice = [i for i, (_, m) in enumerate(during) if m == "STATUS=camera stalled: no frame within read_timeout_s"]
        assert notice, during  # shown by systemctl status, after read_timeout_s
        stalled_at, after = during[notice[0]][0], [m for _, m in during[notice[0] + 1:]]
        assert "WATCHDOG" not in kinds(after), during  # systemd's watchdog would fire and restart us
        assert end - stalled_at >= 2.5  # silent for five watchdog intervals
        stall.unlink()
        recovered = [m for _, m in systemd.drain(3.0)]
        assert kinds(recovered).count("WATCHDOG") >= 3, recovered
        assert any(m.startswith("STATUS=mood=") for m in recovered), recovered  # the stall notice is replaced

        daemon.signal(signal.SIGHUP)  # systemctl reload
        reload = [m for _, m in systemd.drain(2.0) if not m.startswith("WATCHDOG")]
        assert reload[0].startswith("RELOADING=1\nMONOTONIC_USEC="), reload
        assert any(m.startswith("READY=1") for m in reload[1:]), reload

        stall.touch()  # stopping must work with the camera wedged too
        time.sleep(1.0)
        daemon.signal(signal.SIGTERM)
        rest = [m for _, m in systemd.drain(3.0)]
        assert "STOPPING=1" in rest, rest
        assert daemon.wait(10) == 0
    out = daemon.output()
    assert "camera stalled" in out, out  # logged for journalctl as well
