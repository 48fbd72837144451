"""A file this process may read but not write, and Python code run by the user who meets it so: as
`nobody` when the tests run as root (the installed service's case: root's file, another user), else
a read-only file of our own stands in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

AS_ROOT = os.geteuid() == 0
OTHER_USER = "nobody" if AS_ROOT else None
MODE = "0644" if AS_ROOT else "0444"


@contextmanager
def file_another_user_may_not_write(text: str) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="moodcast-other-"))
    try:
        directory.chmod(0o755)  # pytest's own temporary directories are closed to other users
        path = directory / "config.toml"
        path.write_text(text)
        path.chmod(int(MODE, 8))
        yield path
    finally:
        shutil.rmtree(directory)


def run_python_as_that_user(code: str, *args: str) -> subprocess.CompletedProcess:
    other = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] if AS_ROOT else []
    return subprocess.run([*other, sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
