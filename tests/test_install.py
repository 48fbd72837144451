"""deploy/install.sh in a throwaway root (--root DIR): layout, idempotence, uninstall, secrets,
supported releases and the pip constraints decided from each one's Python and numpy."""

from __future__ import annotations

import dataclasses
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
from tests.fake_root import RELEASES, make_root

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy" / "install.sh"
HELPER = REPO / "deploy" / "moodcast-as-service"
TRIM = REPO / "deploy" / "trim-venv"
CI_SCRIPTS = [REPO / ".ci" / name for name in ("run", "floor-test", "arm64-check")]
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


@pytest.fixture
def pi_root(root):
    return make_root(root, RELEASES["pi-bookworm"])


@pytest.fixture
def jetson_root(root):
    return make_root(root, RELEASES["jetpack6"])


@pytest.fixture
def generic_root(root):
    return make_root(root, RELEASES["debian12-amd64"], system_numpy=False)


def test_shellcheck_clean():
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck not installed")
    result = subprocess.run(["shellcheck", str(INSTALL), str(HELPER), str(TRIM), *map(str, CI_SCRIPTS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_pi_install_layout(pi_root):
    root = pi_root
    out = install("--root", str(root), "--platform", "pi").stdout
    unit = (root / "etc/systemd/system/moodcast.service").read_bytes()
    assert unit == (REPO / "systemd/moodcast.service").read_bytes()
    assert not (root / "etc/systemd/system/moodcast.service.d").exists()  # the Jetson drop-in is Jetson only
    assert mode(root / "usr/local/sbin/moodcast-as-service") == 0o755
    creds = root / "etc/moodcast/credentials"
    assert mode(creds) == 0o700
    for name in SECRETS:  # LoadCredential= fails the start on a missing file: all three exist
        assert mode(creds / name) == 0o600 and (creds / name).read_text() == ""
    cfg = moodcast_config.load(root / "etc/moodcast/config.toml")
    assert cfg.camera.source == "picamera2"
    assert mode(root / "etc/moodcast/config.toml") == 0o644
    # picamera2 comes from apt and is only visible to a venv with system site packages, kept on
    # bookworm's numpy 1.x (see test_constraints_follow_the_systems_python_and_numpy)
    assert "python3-picamera2" in out
    assert "-m venv --system-site-packages /opt/moodcast/venv" in out
    assert "system: bookworm, Python 3.11 (arm64)" in out.splitlines()
    # nothing that acts on the running system was run under --root
    for command in ("apt-get install", "useradd", "systemctl daemon-reload", "pip install", "trim-venv"):
        line = next(line for line in out.splitlines() if command in line)
        assert line.split()[0] == "skipped", line
    assert "sudo /usr/local/sbin/moodcast-as-service spotify-auth -c /etc/moodcast/config.toml" in out
    assert "journalctl -u moodcast.service" in out and "check-config -c /etc/moodcast/config.toml" in out
    assert "sudo /usr/local/sbin/moodcast-as-service check-config --online -c /etc/moodcast/config.toml" in out


def test_second_run_changes_nothing_and_keeps_an_edited_config(pi_root):
    root = pi_root
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


def test_upgrade_replaces_a_changed_unit_file(pi_root):
    root = pi_root
    install("--root", str(root), "--platform", "pi")
    unit = root / "etc/systemd/system/moodcast.service"
    unit.write_text("stale\n")
    out = install("--root", str(root), "--platform", "pi").stdout
    assert f"updated      {unit}" in out and "1 changed" in out.splitlines()
    assert unit.read_bytes() == (REPO / "systemd/moodcast.service").read_bytes()


def test_world_readable_secret_is_locked_down(generic_root):
    root = generic_root
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
    release = {"jetson": "jetpack6", "pi": "pi-bookworm", "generic": "debian12-amd64"}[platform]
    make_root(root, RELEASES[release])
    (root / "etc/nv_tegra_release").unlink(missing_ok=True)
    (root / marker).parent.mkdir(parents=True, exist_ok=True)
    content = {"jetson": "# R36 (release), REVISION: 4.3\n", "pi": "Raspberry Pi 5 Model B Rev 1.0\0",
               "generic": "12.8\n"}[platform]
    (root / marker).write_text(content)
    out = install("--root", str(root)).stdout
    assert f"platform: {platform} (detected)" in out
    assert moodcast_config.load(root / "etc/moodcast/config.toml").camera.source == source


def test_jetson_install(jetson_root):
    root = jetson_root
    out = install("--root", str(root), "--platform", "jetson").stdout
    dropin = root / "etc/systemd/system/moodcast.service.d/jetson.conf"
    assert dropin.read_bytes() == (REPO / "systemd/moodcast.service.d/jetson.conf").read_bytes()
    cfg = moodcast_config.load(root / "etc/moodcast/config.toml")
    assert cfg.camera.source == "gstreamer"
    assert cfg.camera.pipeline.startswith("nvarguscamerasrc") and "appsink" in cfg.camera.pipeline
    # JetPack's OpenCV (with GStreamer) must not be shadowed by a pip wheel
    assert "--system-site-packages" in out and "except opencv-python-headless" in out
    assert "python3-picamera2" not in out


def test_generic_install_uses_a_plain_venv_and_pip_systemd_python(generic_root):
    root = generic_root
    out = install("--root", str(root), "--platform", "generic").stdout
    assert "-m venv /opt/moodcast/venv" in out and "--system-site-packages" not in out
    assert "libsystemd-dev" in out and "systemd-python" in out
    assert (root / "opt/moodcast/constraints.txt").read_text() == ""
    assert moodcast_config.load(root / "etc/moodcast/config.toml").camera.source == "opencv"


@pytest.mark.parametrize("release", ["pi-trixie", "pi-bookworm"])
def test_usb_camera_on_a_pi_needs_no_pi_camera_stack(root, release):
    make_root(root, RELEASES[release], system_numpy=False)  # Pi OS Lite: no python3-picamera2, no numpy
    out = install("--root", str(root), "--platform", "pi", "--camera", "usb").stdout
    assert moodcast_config.load(root / "etc/moodcast/config.toml").camera.device == "/dev/video0"
    apt = next(line for line in out.splitlines() if "apt-get install" in line)
    assert "python3-picamera2" not in out and apt.endswith("python3-venv python3-systemd (--root)"), apt
    assert "numpy: none on the system; the venv gets its own" in out
    assert (root / "opt/moodcast/constraints.txt").read_text() == ""


# (release, system numpy besides apt's) -> the constraints for pip. The venv keeps the system
# numpy's major version and never goes below it; OpenCV 4.11+ needs numpy 2, JetPack brings its own.
CONSTRAINTS = [
    ("pi-trixie", None, ["numpy>=2.2.4,<3"]),
    ("pi-bookworm", None, ["numpy>=1.24.2,<2", "opencv-python-headless<4.11"]),
    ("pi-bookworm", "1.26.4", ["numpy>=1.26.4,<2", "opencv-python-headless<4.11"]),  # pip's in /usr/local wins
    ("pi-trixie", "2.3.1", ["numpy>=2.3.1,<3"]),
    ("jetpack6", None, ["numpy>=1.21.5,<2"]),
    ("debian12-amd64", None, []),  # a plain venv sees no system package
]


@pytest.mark.parametrize("release, local_numpy, expected", CONSTRAINTS)
def test_constraints_follow_the_systems_python_and_numpy(root, release, local_numpy, expected):
    r = RELEASES[release]
    make_root(root, r, local_numpy=local_numpy)
    out = install("--root", str(root), "--platform", r.platform, "--camera", "usb").stdout
    assert (root / "opt/moodcast/constraints.txt").read_text().splitlines() == expected
    assert f"Python {r.python} ({r.arch})" in out


def test_python_3_13_with_a_numpy_1_is_refused(root):
    # trixie's Python 3.13 has no numpy 1.x wheels: pip would build numpy from source and fail
    make_root(root, RELEASES["pi-trixie"], local_numpy="1.26.4")
    result = install("--root", str(root), "--platform", "pi", check=False)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "install.sh: error: the system numpy 1.26.4 is 1.x, but Python 3.13 has no numpy 1.x wheels;"
        " install the distribution's python3-numpy (2.x)"]


@pytest.mark.parametrize("release, change, message", [
    ("pi-bookworm", {"arch": "armhf"}, "Raspberry Pi OS bookworm is 32-bit armhf; moodcast needs 64-bit Raspberry Pi OS"
                                       " (trixie or bookworm): LiteRT has no wheels for 32-bit armhf"),
    ("pi-bookworm", {"codename": "bullseye", "python": "3.9"},
     "Raspberry Pi OS 'bullseye' is not supported; moodcast supports 64-bit Raspberry Pi OS trixie and bookworm"),
    ("jetpack6", {"tegra": "# R35 (release), REVISION: 4.1"},
     "this Jetson runs '# R35 (release), REVISION: 4.1'; moodcast supports JetPack 6 (L4T R36)"),
    ("debian12-amd64", {"arch": "armhf"}, "this system's Python is 32-bit armhf; moodcast needs a 64-bit system"),
    ("debian12-amd64", {"codename": "bullseye", "python": "3.9"}, "Python 3.9 is too old"),
])
def test_unsupported_releases_are_refused_in_one_line(root, release, change, message):
    r = dataclasses.replace(RELEASES[release], **change)
    make_root(root, r)
    result = install("--root", str(root), "--platform", r.platform, check=False)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert not (root / "opt").exists() and not (root / "etc/moodcast").exists()


def test_without_a_running_systemd_the_unit_is_enabled_for_the_next_boot(pi_root):
    # a chroot or an image build: no systemctl call, the link systemctl enable would make
    root = pi_root
    out = install("--root", str(root), "--platform", "pi", "--with-mosquitto").stdout
    link = root / "etc/systemd/system/multi-user.target.wants/moodcast.service"
    assert os.readlink(link) == "/etc/systemd/system/moodcast.service"
    assert f"linked       {link} -> /etc/systemd/system/moodcast.service" in out
    assert ("skipped      systemctl daemon-reload and restart (--root): moodcast.service is enabled and starts"
            " at the next boot") in out
    assert "skipped      systemctl enable --now mosquitto.service (--root)" in out
    assert not any(line.split()[0] in ("run", "would-run") for line in out.splitlines() if "systemctl" in line)
    assert "5. It starts at the next boot (--root now); then watch the log:" in out
    assert "systemctl start" not in out  # the next steps never ask to start what cannot start here
    assert f"unchanged    {link}" in install("--root", str(root), "--platform", "pi").stdout
    out = install("--root", str(root), "--uninstall").stdout
    assert not link.exists() and f"removed      {link}" in out


def test_the_optional_mosquitto_bounds_the_packet_size(pi_root):
    root = pi_root
    conf = root / "etc/mosquitto/conf.d/moodcast.conf"
    install("--root", str(root), "--platform", "pi")
    assert not conf.exists()  # another broker's configuration is not ours to touch
    install("--root", str(root), "--platform", "pi", "--with-mosquitto")
    assert conf.read_bytes() == (REPO / "deploy/mosquitto/moodcast.conf").read_bytes() and mode(conf) == 0o644
    assert "max_packet_size 65536" in conf.read_text().splitlines()  # checked on a real broker: test_command_faults
    assert f"unchanged    {conf}" in install("--root", str(root), "--platform", "pi", "--with-mosquitto").stdout
    out = install("--root", str(root), "--uninstall").stdout
    assert not conf.exists() and f"removed      {conf}" in out


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "deploy/examples").glob("*.toml")))
def test_every_example_merges_into_a_valid_config(root, example):
    platform, camera = {"pi-csi.toml": ("pi", "csi"), "jetson-csi.toml": ("jetson", "csi"),
                        "usb-webcam.toml": ("generic", "usb")}[example]
    make_root(root, RELEASES[{"pi": "pi-trixie", "jetson": "jetpack6", "generic": "debian12-amd64"}[platform]])
    install("--root", str(root), "--platform", platform, "--camera", camera)
    cfg = moodcast_config.load(root / "etc/moodcast/config.toml")
    wanted = tomllib.loads((REPO / "deploy/examples" / example).read_text())["camera"]
    assert {key: getattr(cfg.camera, key) for key in wanted} == wanted  # no key lost or misspelt


def test_dry_run_writes_nothing(jetson_root):
    root = jetson_root
    before = snapshot(root)
    out = install("--root", str(root), "--platform", "jetson", "--dry-run").stdout
    assert snapshot(root) == before
    assert f"would-create {root}/etc/moodcast/config.toml" in out
    assert "dry run: nothing was changed" in out


def test_dry_run_on_this_system_changes_nothing():
    paths = map(Path, ("/opt/moodcast", "/etc/moodcast", "/etc/systemd/system/moodcast.service"))
    before = {p: p.exists() for p in paths}
    result = install("--dry-run", "--platform", "generic")
    assert "dry run: nothing was changed" in result.stdout
    assert {p: p.exists() for p in before} == before


def test_uninstall_keeps_config_and_state_unless_purged(jetson_root):
    root = jetson_root
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


def test_set_secret_from_stdin(pi_root, monkeypatch):
    root = pi_root
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


YOUTUBE_SEARCH = """
import sys, googleapiclient
from googleapiclient.discovery import build
site, url, key = sys.argv[1:]
assert googleapiclient.__file__.startswith(site), googleapiclient.__file__  # the trimmed copy
service = build("youtube", "v3", developerKey=key, client_options={"api_endpoint": url}, static_discovery=True,
                cache_discovery=False)
found = service.search().list(part="snippet", q="sad songs", type="video", maxResults=3).execute()
print(len(found["items"]))
"""


def test_trimmed_venv_keeps_the_youtube_client_working(tmp_path, youtube):
    """The installer's trim-venv removes every discovery document but YouTube v3's (about 110 MB)."""
    import googleapiclient

    site = tmp_path / f"venv/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    shutil.copytree(Path(googleapiclient.__file__).parent, site / "googleapiclient",
                    ignore=shutil.ignore_patterns("__pycache__"))
    documents = site / "googleapiclient/discovery_cache/documents"
    others = len(list(documents.glob("*.json"))) - 1
    assert others > 100
    out = subprocess.run(["bash", str(TRIM), str(tmp_path / "venv")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert [p.name for p in documents.glob("*.json")] == ["youtube.v3.json"]
    assert f"removed {others} discovery documents" in out.stdout
    search = subprocess.run([sys.executable, "-c", YOUTUBE_SEARCH, str(site), f"{youtube.url}/", youtube.api_key],
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(site)})
    assert search.returncode == 0 and search.stdout.split() == ["3"], search.stderr
    assert [r.query["q"] for r in youtube.searches()] == ["sad songs"]
    again = subprocess.run(["bash", str(TRIM), str(tmp_path / "venv")], capture_output=True, text=True, timeout=60)
    assert "removed 0 discovery documents" in again.stdout  # idempotent


def test_trim_venv_refuses_what_it_does_not_know(tmp_path):
    documents = tmp_path / "venv/lib/python3.13/site-packages/googleapiclient/discovery_cache/documents"
    documents.mkdir(parents=True)
    (documents / "drive.v3.json").write_text("{}")  # no youtube.v3.json: a googleapiclient it does not know
    out = subprocess.run(["bash", str(TRIM), str(tmp_path / "venv")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "has no youtube.v3.json: leaving it alone" in out.stderr
    assert (documents / "drive.v3.json").exists()
    out = subprocess.run(["bash", str(TRIM), str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("usage: trim-venv VENV")
