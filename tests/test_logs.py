"""Logging setup: console lines, journal detection, native journal fields, prefixed fallback.

Each case runs in a child process, because what is checked is how the process's real stderr
(a file, a pipe) and $JOURNAL_STREAM are wired, as systemd wires them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from moodcast.logs import RateLimitedLog, setup_logging

LOG_SOME = """
import logging
from moodcast.logs import setup_logging, stderr_is_journal
setup_logging("info")
print("journal" if stderr_is_journal() else "no-journal", flush=True)
logging.getLogger("moodcast.camera").debug("not shown at info level")
logging.getLogger("moodcast.camera").info("camera opened: %s", "/dev/video0")
logging.getLogger("moodcast.tracker").warning("mood changed to happy",
    extra={"MOOD": "happy", "CONFIDENCE": "0.83", "COMPONENT": "mood"})
logging.getLogger("paho.mqtt.client").error("connection refused")
"""


def run_child(code: str, tmp_path, journal: str | None, block_systemd: bool = False):
    """Run `code` with stderr going to a file; journal='match' sets JOURNAL_STREAM to that file."""
    err_path = tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    prefix = "import sys; sys.modules['systemd'] = None  # as if python3-systemd were not installed\n"
    with open(err_path, "wb") as err:
        st = os.fstat(err.fileno())
        if journal == "match":
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        elif journal == "other":  # inherited from a service that spawned us, stderr redirected since
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino + 1}"
        out = subprocess.run([sys.executable, "-c", (prefix if block_systemd else "") + code],
                             stdout=subprocess.PIPE, stderr=err, env=env, timeout=60, text=True)
    return out.returncode, out.stdout, err_path.read_text()


def test_console_lines_outside_systemd(tmp_path):
    rc, out, err = run_child(LOG_SOME, tmp_path, journal=None)
    assert rc == 0 and out.strip() == "no-journal"
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert re.fullmatch(r"\d\d:\d\d:\d\d INFO camera: camera opened: /dev/video0", lines[0])
    assert re.fullmatch(r"\d\d:\d\d:\d\d WARNING mood: mood changed to happy", lines[1])
    assert re.fullmatch(r"\d\d:\d\d:\d\d ERROR paho\.mqtt\.client: connection refused", lines[2])


def test_journal_stream_of_another_file_is_not_the_journal(tmp_path):
    rc, out, _ = run_child(LOG_SOME, tmp_path, journal="other")
    assert rc == 0 and out.strip() == "no-journal"


def test_journal_without_systemd_python_gets_priority_prefixed_lines(tmp_path):
    rc, out, err = run_child(LOG_SOME, tmp_path, journal="match", block_systemd=True)
    assert rc == 0 and out.strip() == "journal"
    # journald reads "<N>" as the entry's priority and adds its own timestamp
    assert err.splitlines() == [
        "<6>camera: camera opened: /dev/video0",
        "<4>mood: mood changed to happy",
        "<3>paho.mqtt.client: connection refused",
    ]


# Stands in for journald: a datagram socket at the path libsystemd sends to, inside a private
# mount namespace so the host's /run is untouched.
JOURNALD = textwrap.dedent("""
    import json, os, socket, struct
    os.makedirs("/run/systemd/journal")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/run/systemd/journal/socket")
    sock.settimeout(10)
""") + LOG_SOME + textwrap.dedent("""
    def parse(data):  # the native journal protocol: KEY=value lines, or KEY, 64-bit length, bytes
        fields = {}
        while data:
            line, _, rest = data.partition(b"\\n")
            if b"=" in line:
                key, _, value = line.partition(b"=")
                data = rest
            else:
                key, (size,) = line, struct.unpack("<Q", rest[:8])
                value, data = rest[8:8 + size], rest[9 + size:]
            fields[key.decode()] = value.decode()
        return fields
    print(json.dumps([parse(sock.recv(65536)) for _ in range(3)]))
""")


def test_native_journal_entries_carry_structured_fields(tmp_path):
    pytest.importorskip("systemd.journal", reason="systemd-python not installed (needs libsystemd-dev)")
    if not shutil.which("unshare"):
        pytest.skip("unshare not available")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a mount namespace: {probe.stderr.decode().strip()}")
    script = tmp_path / "journald.py"
    script.write_text(JOURNALD)
    shell = f"mount -t tmpfs tmpfs /run && exec {sys.executable} {script}"
    with open(tmp_path / "stderr.txt", "wb") as err:
        st = os.fstat(err.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        out = subprocess.run(["unshare", "-m", "sh", "-c", shell], stdout=subprocess.PIPE, stderr=err,
                             env=env, timeout=60, text=True)
    assert out.returncode == 0, (tmp_path / "stderr.txt").read_text()
    first, rest = out.stdout.split("\n", 1)
    assert first == "journal"
    camera, mood, paho = json.loads(rest)
    assert camera["MESSAGE"] == "camera opened: /dev/video0"
    assert camera["PRIORITY"] == "6" and camera["COMPONENT"] == "camera"
    assert camera["SYSLOG_IDENTIFIER"] == "moodcast"
    # what makes `journalctl -u moodcast MOOD=happy` work
    assert mood["MESSAGE"] == "mood changed to happy" and mood["PRIORITY"] == "4"
    assert (mood["MOOD"], mood["CONFIDENCE"], mood["COMPONENT"]) == ("happy", "0.83", "mood")
    assert paho["COMPONENT"] == "paho.mqtt.client" and paho["PRIORITY"] == "3"
    assert (tmp_path / "stderr.txt").read_text() == ""  # nothing doubled on stderr


def test_setup_twice_keeps_one_handler_and_the_new_level():
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        setup_logging("info")
        setup_logging("DEBUG")
        assert len(root.handlers) == 1 and root.level == logging.DEBUG
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def test_unknown_level_is_a_clear_error():
    with pytest.raises(ValueError, match="log level must be one of debug, info, warning, error, got 'loud'"):
        setup_logging("loud")


def test_a_rate_limited_line_is_written_burst_times_per_interval_then_says_what_it_held_back(caplog):
    limited = RateLimitedLog(logging.getLogger("moodcast.test"), interval_s=0.5, burst=2)
    with caplog.at_level(logging.INFO, logger="moodcast.test"):
        written = [limited.warning("junk", "rejected %d", i) for i in range(1000)]
        assert limited.info("other kind", "a line of another kind is not held back")
        time.sleep(0.6)
        assert limited.warning("junk", "rejected %d", 1000)
    assert written == [True, True] + [False] * 998
    assert [r.getMessage() for r in caplog.records] == [
        "rejected 0", "rejected 1", "a line of another kind is not held back",
        "rejected 1000 (998 more like this held back in the 0.5 s before)"]
    assert caplog.records[0].levelno == logging.WARNING and caplog.records[2].levelno == logging.INFO
