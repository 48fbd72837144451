"""The command line as a newcomer meets it: real `moodcast` processes, real files, real brokers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def moodcast(*args: str, timeout: float = 90, **kwargs) -> subprocess.CompletedProcess:
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


def test_a_stray_argument_shows_the_subcommands_usage(tmp_path):
    result = moodcast("check-config", str(write_config(tmp_path)), "extra")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["usage: moodcast check-config [-h] [-c FILE] [FILE]",
                                          "moodcast check-config: error: unrecognized arguments: extra"]


def test_two_different_config_files_are_refused(tmp_path):
    result = moodcast("check-config", "-c", "a.toml", "b.toml")
    assert result.returncode == 2
    assert "two configuration files given: -c a.toml and b.toml" in result.stderr
