"""check-config (and `run`, in its log) says when others could change the configuration, and when the
state directory cannot keep the settings; `--strict` refuses both (exit 78)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon_process import run_cli, write_config
from tests.media import SAMPLES

STILL = {"source": "replay", "path": str(SAMPLES / "01_astronaut.png")}
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


def config_in(directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    return write_config(directory / "config.toml", None, camera=STILL, state={"dir": str(directory / "state")})


def warnings(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("moodcast: warning: ")]


def test_a_private_configuration_is_ok(tmp_path):
    result = run_cli("check-config", "--strict", "-c", str(config_in(tmp_path / "etc")), timeout=300)
    assert result.returncode == 0, result.stderr
    assert warnings(result) == [] and ": OK\n" in result.stdout


@pytest.mark.parametrize("mode, who", [(0o666, "its group and everyone"), (0o646, "everyone"), (0o664, "its group")])
def test_a_writable_configuration_is_a_warning_and_strict_fails(tmp_path, mode, who):
    config = config_in(tmp_path / "etc")
    config.chmod(mode)
    lenient = run_cli("check-config", "-c", str(config), timeout=300)
    assert lenient.returncode == 0 and "OK, but 1 warning(s) below" in lenient.stdout
    assert warnings(lenient) == [f"moodcast: warning: {config} is writable by {who} (mode {mode:04o}); run: chmod "
                                 f"go-w {config}: whoever can change it can point moodcast at their broker or secrets"]
    strict = run_cli("check-config", "--strict", "-c", str(config), timeout=300)
    assert strict.returncode == 78 and "FAILED (--strict)" in strict.stdout


def test_a_configuration_in_a_directory_anyone_may_write_is_a_warning(tmp_path):
    config = config_in(tmp_path / "shared")
    config.parent.chmod(0o777)
    result = run_cli("check-config", "--strict", "-c", str(config), timeout=300)
    assert result.returncode == 78
    assert [f"{config.parent} is writable by everyone (mode 0777): anyone can replace config.toml"] == [
        line.split("moodcast: warning: ")[1].split("; run:")[0] for line in warnings(result)]
    config.parent.chmod(0o1777)  # the sticky bit: others may add files, but not replace ours
    assert run_cli("check-config", "--strict", "-c", str(config), timeout=300).returncode == 0


@needs_root
def test_another_users_configuration_is_a_warning(tmp_path):
    config = config_in(tmp_path / "home")
    os.chown(config, 65534, 65534)
    result = run_cli("check-config", "--strict", "-c", str(config), timeout=300)
    assert result.returncode == 78
    assert warnings(result) == [f"moodcast: warning: {config} belongs to another user (uid 65534); run: chown root "
                                f"{config}: whoever can change it can point moodcast at their broker or secrets"]


def test_run_logs_the_warning_at_start(tmp_path):
    config = config_in(tmp_path / "etc")
    config.chmod(0o666)
    result = run_cli("run", "-c", str(config), timeout=300)  # a single still, no loop: it ends by itself
    assert result.returncode == 0, result.stderr
    assert f"WARNING moodcast: {config} is writable by its group and everyone (mode 0666)" in result.stderr


def read_only(directory: Path, *command: str) -> subprocess.CompletedProcess:
    """`moodcast *command` with `directory` mounted read-only (as root: a bind mount in a private mount
    namespace, since root writes through any mode bits; otherwise mode 0555 is enough)."""
    moodcast = [sys.executable, "-m", "moodcast.cli", *command]
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return subprocess.run(moodcast, capture_output=True, text=True, timeout=300)
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("cannot create a mount namespace for a read-only bind mount")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(directory), *moodcast],
                          capture_output=True, text=True, timeout=300)


def test_a_read_only_state_directory_is_a_warning(tmp_path):
    config = config_in(tmp_path / "etc")
    (tmp_path / "etc" / "state").mkdir()
    result = read_only(tmp_path / "etc" / "state", "check-config", "-c", str(config))
    assert result.returncode == 0, result.stderr
    reason = "Read-only file system" if os.geteuid() == 0 else "Permission denied"
    assert warnings(result) == [
        f"moodcast: warning: config.toml: [state] dir: {tmp_path}/etc/state: cannot write there ({reason}): the "
        "privacy pause, policy and autoplay set by command, and the Spotify token, cannot be saved and will not "
        "survive a restart"]
