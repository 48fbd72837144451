"""The versions moodcast claims to support are the ones CI installs.

.ci/floor-constraints.txt is what the lowest-versions CI job (.ci/run) installs before running the
runtime tests: it must be pyproject.toml's lower bounds, and for numpy and OpenCV what the installer
settles on for Raspberry Pi OS bookworm's own numpy (the oldest supported combination).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.fake_root import RELEASES, make_root

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def floor_pins() -> dict[str, Version]:
    pins = {}
    for line in (REPO / ".ci/floor-constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip()] = Version(version)
    return pins


def lower_bound(req: Requirement) -> Version:
    (bound,) = [s.version for s in req.specifier if s.operator == ">="]
    return Version(bound)


def bookworm_constraints(tmp_path) -> list[Requirement]:
    root = make_root(tmp_path / "root", RELEASES["pi-bookworm"])
    result = subprocess.run(["bash", str(REPO / "deploy/install.sh"), "--root", str(root), "--platform", "pi"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [Requirement(line) for line in (root / "opt/moodcast/constraints.txt").read_text().split()]


def test_floor_constraints_are_the_lowest_supported_versions(tmp_path):
    pins = floor_pins()
    runtime = [Requirement(r) for r in PROJECT["dependencies"] if Requirement(r).marker is None]
    assert set(pins) == {r.name for r in runtime}
    installer = {r.name: r.specifier for r in bookworm_constraints(tmp_path)}
    for req in runtime:
        pin = pins[req.name]
        assert req.specifier.contains(pin), f"{req.name} {pin} is outside {req}"
        if req.name == "numpy":  # bookworm's python3-numpy, which the venv then uses
            assert pin == Version(RELEASES["pi-bookworm"].numpy) and installer["numpy"].contains(pin)
        elif req.name == "opencv-python-headless":  # the newest that the installer's cap allows
            assert installer[req.name] == Requirement("x<4.11").specifier and (pin.major, pin.minor) == (4, 10)
        else:
            assert pin.release[:len(lower_bound(req).release)] == lower_bound(req).release, (req, pin)


def test_train_extra_picks_a_tensorflow_per_cpu():
    # tensorflow-cpu has no aarch64 wheels: make test on a Pi or Jetson installs tensorflow
    train = [Requirement(r) for r in PROJECT["optional-dependencies"]["train"]]
    for machine, wanted in (("x86_64", "tensorflow-cpu"), ("AMD64", "tensorflow-cpu"), ("aarch64", "tensorflow")):
        env = {"platform_machine": machine, "python_version": "3.11", "sys_platform": "linux", "extra": "train"}
        chosen = [r.name for r in train
                  if r.name.startswith("tensorflow") and (r.marker is None or r.marker.evaluate(env))]
        assert chosen == [wanted], machine


def test_opencv_warnings_are_silenced_with_the_installed_opencv():
    # the newest OpenCV under make test, 4.10 (bookworm's) in the lowest-versions job: importing
    # moodcast.vision.camera must work with both and leave OpenCV's own warnings out of the log
    open_missing = "import cv2; cv2.VideoCapture('/dev/video-moodcast-missing', cv2.CAP_V4L2)"
    plain = subprocess.run([sys.executable, "-c", open_missing], capture_output=True, text=True, timeout=60)
    assert "WARN" in plain.stderr  # OpenCV does warn here on its own
    quiet = subprocess.run([sys.executable, "-c", "import moodcast.vision.camera; " + open_missing],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
    assert quiet.returncode == 0 and "WARN" not in quiet.stderr, quiet.stderr
