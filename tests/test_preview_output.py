"""`moodcast preview -o`: a new 0600 file every time, never written through a symlink or over a FIFO, a
device, a socket or another user's file, clear errors."""

import os
import socket
import stat

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


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a device node or another user's file needs root")


def test_a_fifo_is_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    result = preview(tmp_path, str(fifo))
    assert result.returncode == 1
    assert result.stderr.strip() == f"moodcast: {fifo}: is a FIFO, not a regular file; give a new file name"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_socket_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "s.jpg"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        result = preview(tmp_path, str(path))
    assert result.returncode == 1 and "is a socket, not a regular file" in result.stderr
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


@needs_root
def test_a_device_node_is_refused_and_left_alone(tmp_path):
    """The issue's `-o /dev/null` as root, on a device node of the test's own (never the system's)."""
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    before = os.lstat(null)
    result = preview(tmp_path, str(null))
    assert result.returncode == 1
    assert result.stderr.strip() == f"moodcast: {null}: is a character device, not a regular file; give a new file name"
    after = os.lstat(null)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (before.st_ino, before.st_mode, os.makedev(1, 3))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@needs_root
def test_another_users_file_is_not_replaced(tmp_path):
    theirs = tmp_path / "theirs.jpg"
    theirs.write_bytes(b"their picture")
    os.chown(theirs, 65534, 65534)
    result = preview(tmp_path, str(theirs))
    assert result.returncode == 1
    assert result.stderr.strip() == f"moodcast: {theirs}: belongs to another user (uid 65534); refusing to replace it"
    assert theirs.read_bytes() == b"their picture" and theirs.stat().st_uid == 65534
