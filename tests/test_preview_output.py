"""`moodcast preview -o`: a new 0600 file every time, never written through a symlink, clear errors."""

import os

import pytest

from tests.daemon_process import run_cli, write_config
from tests.media import SAMPLES

FACE = str(SAMPLES / "01_astronaut.png")


def preview(tmp_path, output: str):
    config = write_config(tmp_path / "config.toml", None)
    return run_cli("preview", "-c", str(config), "--replay", FACE, "-o", output, timeout=600)


def test_an_existing_loose_file_is_replaced_by_a_private_one(tmp_path):
    target = tmp_path / "old.jpg"
    target.write_bytes(b"not a jpeg")
    target.chmod(0o644)
    hard_link = tmp_path / "hard-link-to-old"
    os.link(target, hard_link)  # whoever shares the old inode must not get the camera frame
    result = preview(tmp_path, str(target))
    assert result.returncode == 0, result.stderr
    assert target.read_bytes()[:2] == b"\xff\xd8"  # a JPEG now
    assert target.stat().st_mode & 0o777 == 0o600
    assert hard_link.read_bytes() == b"not a jpeg"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("dangling", [False, True])
def test_a_symlink_is_refused(tmp_path, dangling):
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious")
    link = tmp_path / "link.jpg"
    link.symlink_to(victim)
    result = preview(tmp_path, str(link))
    assert result.returncode == 1
    assert result.stderr.strip() == f"moodcast: {link}: is a symbolic link; refusing to write a camera frame through it"
    assert victim.read_text() == "precious" if not dangling else not victim.exists()


@pytest.mark.parametrize("name", ["existing", "new/"])
def test_a_directory_is_a_clear_error(tmp_path, name):
    (tmp_path / "existing").mkdir()
    output = f"{tmp_path}/{name}"
    result = preview(tmp_path, output)
    assert result.returncode == 1
    assert "is a directory; give a file name" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "new").exists()
