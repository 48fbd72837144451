"""The Makefile's housekeeping: `make test` as root installs only missing packages and upgrades none;
`make clean` leaves no tool caches behind."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "install-missing-packages"

# What apt-get -s prints: "[old]" marks an upgrade of an installed package.
SIMULATIONS = {
    "mosquitto": "Inst libcjson1 (1.7.15-1 Debian:12/stable [amd64])\n"
                 "Inst mosquitto (2.0.11-1.2 Debian:12/stable [amd64])",
    "libsystemd-dev": "Inst libsystemd0 [252.30-1~deb12u2] (252.38-1~deb12u1 Debian:12/stable [amd64])\n"
                      "Inst systemd [252.30-1~deb12u2] (252.38-1~deb12u1 Debian:12/stable [amd64])\n"
                      "Inst libsystemd-dev (252.38-1~deb12u1 Debian:12/stable [amd64])",
}


def fake_tools(tmp_path: Path, installed: set[str], uid: int = 0) -> dict:
    """dpkg-query, apt-get and id on the PATH that answer like Debian's; apt-get logs every call and
    simulates (-s) from sim/<package>, else as a plain new package."""
    bin_dir, sim = tmp_path / "bin", tmp_path / "sim"
    bin_dir.mkdir()
    sim.mkdir()
    for pkg, text in SIMULATIONS.items():
        (sim / pkg).write_text(text + "\n")
    scripts = {
        "dpkg": "exit 0",
        "dpkg-query": f'[[ " {" ".join(sorted(installed))} " == *" ${{@: -1}} "* ]] || exit 1\n'
                      'echo -n "install ok installed"',
        "id": f"echo {uid}",
        "apt-get": f'echo "$*" >> {tmp_path / "apt.log"}\n'
                   '[[ " $* " == *" -s "* ]] || exit 0\n'
                   f'pkg="${{@: -1}}"; cat "{sim}/$pkg" 2>/dev/null || echo "Inst $pkg (1.0 Debian:12/stable [amd64])"',
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/usr/bin/env bash\n{body}\n")
        path.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def run_script(env: dict, *packages: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *packages], capture_output=True, text=True, timeout=60, env=env)


def apt_calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "apt.log"
    return log.read_text().splitlines() if log.exists() else []


def test_as_root_only_missing_packages_are_installed_and_nothing_is_upgraded(tmp_path):
    env = fake_tools(tmp_path, installed={"systemd", "pkg-config", "shellcheck"})
    result = run_script(env, "mosquitto", "shellcheck", "systemd", "pkg-config", "libsystemd-dev")
    assert result.returncode == 0, result.stderr
    installs = [c for c in apt_calls(tmp_path) if " install " in f" {c} " and " -s " not in f" {c} "]
    assert installs == ["-q -y --no-install-recommends --no-upgrade install mosquitto"]
    assert ("not installing libsystemd-dev: it would upgrade libsystemd0 systemd (apt install libsystemd-dev "
            "yourself if you want that)") in result.stdout


def test_nothing_missing_runs_no_apt(tmp_path):
    env = fake_tools(tmp_path, installed={"mosquitto", "shellcheck"})
    assert run_script(env, "mosquitto", "shellcheck").returncode == 0
    assert apt_calls(tmp_path) == []


def test_not_root_says_what_to_install(tmp_path):
    env = fake_tools(tmp_path, installed={"shellcheck"}, uid=1000)
    result = run_script(env, "mosquitto", "shellcheck", "libsystemd-dev")
    assert result.returncode == 1
    assert result.stdout.strip() == ("tests need: mosquitto libsystemd-dev  ->  "
                                     "sudo apt install mosquitto libsystemd-dev")
    assert apt_calls(tmp_path) == []


def test_make_system_deps_uses_the_script():
    makefile = (ROOT / "Makefile").read_text()
    assert "\t@.ci/install-missing-packages $(TEST_PACKAGES)\n" in makefile
    assert "apt-get" not in makefile


def test_make_clean_removes_the_venv_outputs_and_tool_caches(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    made = [".venv/bin", "out/bench", ".pytest_cache", ".mypy_cache/3.10", ".ruff_cache/0.17",
            "daemon/moodcast.egg-info"]
    for name in made:
        (tmp_path / name).mkdir(parents=True)
    (tmp_path / "daemon" / "moodcast").mkdir()
    result = subprocess.run(["make", "-s", "clean"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Makefile", "daemon"]
    assert [p.name for p in (tmp_path / "daemon").iterdir()] == ["moodcast"]
