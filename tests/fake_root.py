"""The parts of a system root that deploy/install.sh reads under --root, for each supported release.

The installer decides from files, not from running anything: /etc/os-release (the release),
/usr/bin/python3 -> python3.N (the Python version) and that binary's ELF header (its CPU), the
numpy metadata the system Python sees (apt's python3-numpy, or a system-wide pip's), and on a
Jetson /etc/nv_tegra_release. These roots hold exactly those files, laid out as the real systems
lay them out: numpy-V.egg-info from Debian 12's and Ubuntu 22.04's python3-numpy,
numpy-V.dist-info from Debian 13's (checked in the debootstrapped roots of `make arm64-check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ELF_MACHINE = {"arm64": 183, "amd64": 62, "armhf": 40}


@dataclass(frozen=True)
class Release:
    codename: str
    python: str  # 3.N of /usr/bin/python3
    arch: str  # arm64 | amd64 | armhf
    numpy: str  # python3-numpy's version (pulled in by python3-picamera2 / JetPack's OpenCV)
    numpy_meta: str  # how Debian packages it: egg-info | dist-info
    platform: str  # the installer's --platform
    tegra: str | None = None  # /etc/nv_tegra_release, first line


# The supported releases (README, docs/install.md), and a generic Debian 12 PC.
RELEASES = {
    "pi-trixie": Release("trixie", "3.13", "arm64", "2.2.4", "dist-info", "pi"),
    "pi-bookworm": Release("bookworm", "3.11", "arm64", "1.24.2", "egg-info", "pi"),
    "jetpack6": Release("jammy", "3.10", "arm64", "1.21.5", "egg-info", "jetson",
                        tegra="# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64"),
    "debian12-amd64": Release("bookworm", "3.11", "amd64", "1.24.2", "egg-info", "generic"),
}


def elf_header(arch: str) -> bytes:
    """The first 64 bytes of an ELF executable for arch (class, byte order, machine)."""
    head = bytearray(64)
    head[0:4] = b"\x7fELF"
    head[4] = 1 if arch == "armhf" else 2  # ELFCLASS32 / ELFCLASS64
    head[5] = head[6] = 1  # little-endian, version 1
    head[16:18] = (2).to_bytes(2, "little")  # ET_EXEC
    head[18:20] = ELF_MACHINE[arch].to_bytes(2, "little")
    return bytes(head)


def make_root(root: Path, release: Release, *, system_numpy: bool = True, arch: str | None = None,
              local_numpy: str | None = None) -> Path:
    """Fill root like `release`; system_numpy=False: no python3-numpy (Pi OS Lite, USB webcam);
    local_numpy: a numpy installed system-wide by pip into /usr/local as well."""
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text(f'PRETTY_NAME="{release.codename}"\nVERSION_CODENAME={release.codename}\n')
    (root / "etc/debian_version").write_text("stand-in\n")
    bin_dir = root / "usr/bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / f"python{release.python}").write_bytes(elf_header(arch or release.arch))
    (bin_dir / "python3").symlink_to(f"python{release.python}")
    site = root / "usr/lib/python3/dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    if system_numpy:
        meta = site / f"numpy-{release.numpy}.{release.numpy_meta}"
        meta.mkdir()
        (meta / ("METADATA" if release.numpy_meta == "dist-info" else "PKG-INFO")).write_text(
            f"Metadata-Version: 2.1\nName: numpy\nVersion: {release.numpy}\n")
    if local_numpy:
        meta = root / f"usr/local/lib/python{release.python}/dist-packages/numpy-{local_numpy}.dist-info"
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: numpy\nVersion: {local_numpy}\n")
    if release.tegra:
        (root / "etc/nv_tegra_release").write_text(release.tegra + "\n")
    return root
