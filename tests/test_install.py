"""deploy/install.sh in a throwaway root (--root DIR): layout, idempotence, uninstall, secrets."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from moodcast import config as moodcast_config
from moodcast.secrets import read_secret

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy" / "install.sh"
HELPER = REPO / "deploy" / "moodcast-as-service"
SECRETS = ("spotify_client_secret", "youtube_api_key", "mqtt_password")


def install(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", str(INSTALL), *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its mode, mtime and content digest."""
    found = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        found[str(path.relative_to(root))] = (stat.filemode(st.st_mode), st.st_mtime_ns, digest)
    return found


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def root(tmp_path):
    d = tmp_path / "root"
    d.mkdir()
    return d


def test_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed")
    result = subprocess.run(["shellcheck", str(INSTALL), str(HELPER)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_pi_install_layout(root):
    out = install("--root", str(root), "--platform", "pi").stdout
    assert (root / "etc/systemd/system/moodcast.service").read_bytes() == (REPO / "systemd/moodcast.service").read_bytes()
    assert not (root / "etc/systemd/system/moodcast.service.d").exists()  # the Jetson drop-in is Jetson only
    assert mode(root / "usr/local/sbin/moodcast-as-service") == 0o755
    creds = root / "etc/moodcast/credentials"
    assert mode(creds) == 0o700
    for name in SECRETS:  # LoadCredential= fails the start on a missing file: all three exist
        assert mode(creds / name) == 0o600 and (creds / name).read_text() == ""
    cfg = moodcast_config.load(root / "etc/moodcast/config.toml")
    assert cfg.camera.source == "picamera2"
    assert mode(root / "etc/moodcast/config.toml") == 0o644
    # picamera2 comes from apt and is only visible to a venv with system site packages, kept on numpy 1.x
    assert "python3-picamera2" in out
    assert "-m venv --system-site-packages /opt/moodcast/venv" in out
    assert (root / "opt/moodcast/constraints.txt").read_text().splitlines() == ["numpy<2", "opencv-python-headless<4.11"]
    # nothing that acts on the running system was run under --root
    for command in ("apt-get install", "useradd", "systemctl enable", "pip install"):
        line = next(line for line in out.splitlines() if command in line)
        assert line.split()[0] == "skipped", line
    assert "sudo /usr/local/sbin/moodcast-as-service spotify-auth -c /etc/moodcast/config.toml" in out
    assert "journalctl -u moodcast.service" in out and "check-config -c /etc/moodcast/config.toml" in out


def test_second_run_changes_nothing_and_keeps_an_edited_config(root):
    install("--root", str(root), "--platform", "pi")
    config = root / "etc/moodcast/config.toml"
    edited = config.read_text().replace('host = "localhost"', 'host = "broker.lan"')
    config.write_text(edited)
    (root / "etc/moodcast/credentials/mqtt_password").write_text("s3cret\n")
    before = snapshot(root)

    again = install("--root", str(root), "--platform", "pi").stdout
    assert snapshot(root) == before
    assert "0 changed" in again.splitlines()
    assert config.read_text() == edited
    assert f"kept         {config}" in again
    assert (root / "etc/moodcast/credentials/mqtt_password").read_text() == "s3cret\n"


def test_upgrade_replaces_a_changed_unit_file(root):
    install("--root", str(root), "--platform", "pi")
    unit = root / "etc/systemd/system/moodcast.service"
    unit.write_text("stale\n")
    out = install("--root", str(root), "--platform", "pi").stdout
    assert f"updated      {unit}" in out and "1 changed" in out.splitlines()
    assert unit.read_bytes() == (REPO / "systemd/moodcast.service").read_bytes()


def test_world_readable_secret_is_locked_down(root):
    install("--root", str(root), "--platform", "generic")
    secret = root / "etc/moodcast/credentials/youtube_api_key"
    secret.write_text("key\n")
    secret.chmod(0o644)
    out = install("--root", str(root), "--platform", "generic").stdout
    assert mode(secret) == 0o600 and secret.read_text() == "key\n"
    assert "(was 644)" in out


@pytest.mark.parametrize("marker, platform, source", [
    ("etc/nv_tegra_release", "jetson", "gstreamer"),
    ("proc/device-tree/model", "pi", "picamera2"),
    ("etc/debian_version", "generic", "opencv"),
])
def test_platform_detection(root, marker, platform, source):
    (root / marker).parent.mkdir(parents=True)
    content = {"jetson": "# R36 (release), REVISION: 4.3\n", "pi": "Raspberry Pi 5 Model B Rev 1.0\0",
               "generic": "12.8\n"}[platform]
    (root / marker).write_text(content)
    out = install("--root", str(root)).stdout
    assert f"platform: {platform} (detected)" in out
    assert moodcast_config.load(root / "etc/moodcast/config.toml").camera.source == source


def test_jetson_install(root):
    out = install("--root", str(root), "--platform", "jetson").stdout
    dropin = root / "etc/systemd/system/moodcast.service.d/jetson.conf"
    assert dropin.read_bytes() == (REPO / "systemd/moodcast.service.d/jetson.conf").read_bytes()
    cfg = moodcast_config.load(root / "etc/moodcast/config.toml")
    assert cfg.camera.source == "gstreamer"
    assert cfg.camera.pipeline.startswith("nvarguscamerasrc") and "appsink" in cfg.camera.pipeline
    # JetPack's OpenCV (with GStreamer) must not be shadowed by a pip wheel
    assert "--system-site-packages" in out and "except opencv-python-headless" in out
    assert "python3-picamera2" not in out


def test_generic_install_uses_a_plain_venv_and_pip_systemd_python(root):
    out = install("--root", str(root), "--platform", "generic").stdout
    assert "-m venv /opt/moodcast/venv" in out and "--system-site-packages" not in out
    assert "libsystemd-dev" in out and "systemd-python" in out
    assert (root / "opt/moodcast/constraints.txt").read_text() == ""
    assert moodcast_config.load(root / "etc/moodcast/config.toml").camera.source == "opencv"


def test_usb_camera_on_a_pi(root):
    install("--root", str(root), "--platform", "pi", "--camera", "usb")
    assert moodcast_config.load(root / "etc/moodcast/config.toml").camera.device == "/dev/video0"


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "deploy/examples").glob("*.toml")))
def test_every_example_merges_into_a_valid_config(root, example):
    platform, camera = {"pi-csi.toml": ("pi", "csi"), "jetson-csi.toml": ("jetson", "csi"),
                        "usb-webcam.toml": ("generic", "usb")}[example]
    install("--root", str(root), "--platform", platform, "--camera", camera)
    cfg = moodcast_config.load(root / "etc/moodcast/config.toml")
    wanted = tomllib.loads((REPO / "deploy/examples" / example).read_text())["camera"]
    assert {key: getattr(cfg.camera, key) for key in wanted} == wanted  # no key lost or misspelt


def test_dry_run_writes_nothing(root):
    out = install("--root", str(root), "--platform", "jetson", "--dry-run").stdout
    assert list(root.iterdir()) == []
    assert f"would-create {root}/etc/moodcast/config.toml" in out
    assert "dry run: nothing was changed" in out


def test_dry_run_on_this_system_changes_nothing():
    before = {p: p.exists() for p in map(Path, ("/opt/moodcast", "/etc/moodcast", "/etc/systemd/system/moodcast.service"))}
    result = install("--dry-run", "--platform", "generic")
    assert "dry run: nothing was changed" in result.stdout
    assert {p: p.exists() for p in before} == before


def test_uninstall_keeps_config_and_state_unless_purged(root):
    install("--root", str(root), "--platform", "jetson")
    (root / "var/lib/moodcast").mkdir(parents=True)
    (root / "var/lib/moodcast/spotify-token.json").write_text("{}")
    out = install("--root", str(root), "--uninstall").stdout
    assert not (root / "opt/moodcast").exists()
    assert not (root / "etc/systemd/system/moodcast.service").exists()
    assert not (root / "etc/systemd/system/moodcast.service.d").exists()
    assert not (root / "usr/local/sbin/moodcast-as-service").exists()
    assert (root / "etc/moodcast/config.toml").exists() and (root / "var/lib/moodcast/spotify-token.json").exists()
    assert "kept" in out and "--uninstall --purge" in out
    assert "0 changed" in install("--root", str(root), "--uninstall").stdout.splitlines()  # idempotent

    out = install("--root", str(root), "--uninstall", "--purge").stdout
    assert not (root / "etc/moodcast").exists() and not (root / "var/lib/moodcast").exists()
    assert "userdel moodcast" in out


def test_set_secret_from_stdin(root, monkeypatch):
    install("--root", str(root), "--platform", "pi")
    install("--root", str(root), "--set-secret", "mqtt_password", stdin="pa ss\n")
    path = root / "etc/moodcast/credentials/mqtt_password"
    assert mode(path) == 0o600
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(path.parent))  # as LoadCredential= hands it over
    assert read_secret("mqtt_password") == "pa ss"
    again = install("--root", str(root), "--set-secret", "mqtt_password", stdin="pa ss\n").stdout
    assert f"unchanged    {path}" in again


@pytest.mark.parametrize("args, stdin, message", [
    (["--set-secret", "password"], "x\n", "unknown secret 'password'"),
    (["--set-secret", "mqtt_password"], "\n", "the value is empty"),
    (["--set-secret", "mqtt_password"], "", "nothing on standard input"),
])
def test_set_secret_errors(root, args, stdin, message):
    result = install("--root", str(root), *args, stdin=stdin, check=False)
    assert result.returncode != 0 and message in result.stderr
    assert not (root / "etc/moodcast/credentials/mqtt_password").exists()


@pytest.mark.parametrize("args, code, message", [
    (["--frobnicate"], 2, "unknown option: --frobnicate"),
    (["--platform", "windows"], 2, "--platform must be pi, jetson or generic, got 'windows'"),
    (["--camera", "ip"], 2, "--camera must be csi or usb"),
    (["--purge"], 2, "--purge only goes with --uninstall"),
    (["--root"], 2, "--root needs a value"),
    (["--platform", "generic", "--camera", "csi"], 1, "--camera csi needs --platform pi or jetson"),
])
def test_bad_options_fail_with_one_clear_line(root, args, code, message):
    result = install("--root", str(root), *args, check=False)
    assert result.returncode == code
    assert message in result.stderr.splitlines()[0]
    assert list(root.iterdir()) == []


def test_undetectable_platform_says_what_to_do(root):
    result = install("--root", str(root), check=False)
    assert result.returncode == 1
    assert "pass --platform pi|jetson|generic" in result.stderr


def test_missing_root_dir_is_an_error(tmp_path):
    result = install("--root", str(tmp_path / "nope"), check=False)
    assert result.returncode == 1 and "not a directory" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to drop privileges")
def test_live_install_requires_root():
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(INSTALL)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("install.sh: error: must run as root")


def test_helper_uses_the_units_identity_and_credentials():
    """moodcast-as-service must run commands exactly as the unit would (same user, state, secrets)."""
    text = HELPER.read_text()
    unit = (REPO / "systemd/moodcast.service").read_text()
    for line in ("User=moodcast", "SupplementaryGroups=video", "StateDirectory=moodcast"):
        assert line in unit and f"--property={line}" in text
    for name in SECRETS:
        assert f"LoadCredential={name}:/etc/moodcast/credentials/{name}" in unit
    assert "LoadCredential=$name:/etc/moodcast/credentials/$name" in text
    assert "/opt/moodcast/venv/bin/moodcast" in text
