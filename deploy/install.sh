#!/usr/bin/env bash
# Install, upgrade or remove moodcast as a hardened systemd service on 64-bit Raspberry Pi OS
# (trixie or bookworm), NVIDIA JetPack 6 or another 64-bit Debian/Ubuntu system. Safe to run again:
# files that are already right are left alone, an existing /etc/moodcast/config.toml and secret
# files are never overwritten. Works without a running systemd (a chroot, an image being built):
# the unit is then enabled for the next boot.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: sudo deploy/install.sh [options]
       sudo deploy/install.sh --uninstall [--purge]
       sudo deploy/install.sh --set-secret NAME     (reads the value from standard input)

  --platform pi|jetson|generic  skip detection (64-bit Raspberry Pi OS trixie or bookworm / JetPack 6 /
                                other 64-bit Debian or Ubuntu)
  --camera csi|usb              camera for a new config.toml (default: csi on pi and jetson, usb elsewhere)
  --with-mosquitto              also install a local Mosquitto MQTT broker (localhost only; MQTT
                                packets bounded to 64 KiB by /etc/mosquitto/conf.d/moodcast.conf)
  --dry-run                     print what would be done, change nothing
  --root DIR                    write every file under DIR instead of / (packaging, tests); steps that
                                act on the running system (apt-get, useradd, pip, systemctl) are printed
  --uninstall                   stop and remove the service and /opt/moodcast; keep config, secrets, state
  --purge                       with --uninstall: also remove /etc/moodcast, /var/lib/moodcast and the user
  --set-secret NAME             store a secret (spotify_client_secret, youtube_api_key, mqtt_password)
  -h, --help                    this help
EOF
}

die() { echo "install.sh: error: $*" >&2; exit 1; }
bad_usage() { echo "install.sh: $*" >&2; echo "try: install.sh --help" >&2; exit 2; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ARGS="$*"

# Fixed locations: the unit file names them too.
OPT=/opt/moodcast
VENV=$OPT/venv
SHARE=$OPT/share
ETC=/etc/moodcast
CRED_DIR=$ETC/credentials
STATE=/var/lib/moodcast
UNIT_DIR=/etc/systemd/system
UNIT=moodcast.service
HELPER=/usr/local/sbin/moodcast-as-service
MOSQUITTO_CONF=/etc/mosquitto/conf.d/moodcast.conf   # --with-mosquitto: max_packet_size
SERVICE_USER=moodcast
SECRETS=(spotify_client_secret youtube_api_key mqtt_password)
PYTHON=/usr/bin/python3

ROOT=""
DRY_RUN=0
ACTION=install
PURGE=0
PLATFORM=""
CAMERA=""
WITH_MOSQUITTO=0
SECRET_NAME=""

need_arg() { [[ $# -ge 2 && -n $2 ]] || bad_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --root) need_arg "$@"; ROOT=$2; shift 2 ;;
        --root=*) ROOT=${1#*=}; shift ;;
        --platform) need_arg "$@"; PLATFORM=$2; shift 2 ;;
        --platform=*) PLATFORM=${1#*=}; shift ;;
        --camera) need_arg "$@"; CAMERA=$2; shift 2 ;;
        --camera=*) CAMERA=${1#*=}; shift ;;
        --set-secret) need_arg "$@"; ACTION=secret; SECRET_NAME=$2; shift 2 ;;
        --set-secret=*) ACTION=secret; SECRET_NAME=${1#*=}; shift ;;
        --with-mosquitto) WITH_MOSQUITTO=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        --uninstall) ACTION=uninstall; shift ;;
        --purge) PURGE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) bad_usage "unknown option: $1" ;;
    esac
done

case $PLATFORM in ""|pi|jetson|generic) ;; *) bad_usage "--platform must be pi, jetson or generic, got '$PLATFORM'" ;; esac
case $CAMERA in ""|csi|usb) ;; *) bad_usage "--camera must be csi or usb, got '$CAMERA'" ;; esac
[[ $PURGE -eq 0 || $ACTION == uninstall ]] || bad_usage "--purge only goes with --uninstall"
if [[ $ACTION == secret ]]; then
    printf '%s\n' "${SECRETS[@]}" | grep -qxF -- "$SECRET_NAME" ||
        bad_usage "--set-secret: unknown secret '$SECRET_NAME' (known: ${SECRETS[*]})"
fi
if [[ -n $ROOT ]]; then
    [[ -d $ROOT ]] || die "--root $ROOT: not a directory"
    ROOT=$(cd "$ROOT" && pwd)
    [[ $ROOT != / ]] || die "--root / is the running system: leave --root out"
fi
if [[ -z $ROOT && $DRY_RUN -eq 0 && $EUID -ne 0 ]]; then
    die "must run as root: sudo $0 $ARGS"
fi

# ---------------------------------------------------------------------------------------------
# Actions. Paths are the final system paths; $ROOT is prefixed when touching files.

CHANGED=0
MOSQUITTO_CHANGED=0
ON_SYSTEM=1   # 0 under --root: the running system is neither queried nor changed
[[ -z $ROOT ]] || ON_SYSTEM=0

say() { printf '  %-12s %s\n' "$1" "$2"; }
# a change: say_change create created PATH prints "created PATH", or "would-create PATH" in a dry run
say_change() { if [[ $DRY_RUN -eq 1 ]]; then say "would-$1" "$3"; else say "$2" "$3"; fi; }

# Run a command that acts on the running system (apt-get, useradd, systemctl, pip, ...):
# counted as a change; under --root only printed, as it would not land under DIR.
run() {
    local shown
    printf -v shown '%q ' "$@"
    if [[ $ON_SYSTEM -eq 0 ]]; then
        say skipped "${shown% } (--root)"
        return
    fi
    CHANGED=$((CHANGED + 1))
    if [[ $DRY_RUN -eq 1 ]]; then
        say would-run "${shown% }"
    else
        say run "${shown% }"
        "$@"
    fi
}

mode_of() { stat -c %a "$1"; }

ensure_dir() {   # ensure_dir PATH MODE
    local dest=$ROOT$1
    if [[ -d $dest ]]; then
        if [[ $(mode_of "$dest") != "$2" ]]; then
            say_change chmod chmod "$2 $dest"
            [[ $DRY_RUN -eq 1 ]] || chmod "$2" "$dest"
            CHANGED=$((CHANGED + 1))
        fi
        return
    fi
    say_change mkdir mkdir "$dest"
    if [[ $DRY_RUN -eq 0 ]]; then
        mkdir -p "$(dirname "$dest")"
        mkdir -m "$2" "$dest"
    fi
    CHANGED=$((CHANGED + 1))
}

# put_file SOURCE PATH MODE: install SOURCE's content at PATH unless it is already there.
put_file() {
    local src=$1 dest=$ROOT$2 mode=$3
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        if [[ $(mode_of "$dest") == "$mode" ]]; then
            say unchanged "$dest"
            return
        fi
        say_change chmod chmod "$mode $dest"
        [[ $DRY_RUN -eq 1 ]] || chmod "$mode" "$dest"
    else
        if [[ -e $dest ]]; then say_change update updated "$dest"; else say_change create created "$dest"; fi
        if [[ $DRY_RUN -eq 0 ]]; then
            mkdir -p "$(dirname "$dest")"
            # write beside the target and rename, so a reader never sees half a file
            install -m "$mode" "$src" "$dest.tmp.$$"
            mv -f "$dest.tmp.$$" "$dest"
        fi
    fi
    CHANGED=$((CHANGED + 1))
}

remove_path() {
    local dest=$ROOT$1
    if [[ -e $dest || -L $dest ]]; then
        say_change remove removed "$dest"
        [[ $DRY_RUN -eq 1 ]] || rm -rf -- "$dest"
        CHANGED=$((CHANGED + 1))
    else
        say absent "$dest"
    fi
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------------------------
# Platform

detect_platform() {
    local model=$ROOT/proc/device-tree/model
    if [[ -e $ROOT/etc/nv_tegra_release ]] || grep -qa "NVIDIA Jetson" "$model" 2>/dev/null; then
        echo jetson
    elif grep -qa "Raspberry Pi" "$model" 2>/dev/null; then
        echo pi
    elif [[ -e $ROOT/etc/debian_version ]]; then
        echo generic
    else
        echo unknown
    fi
}

# The Python the venv is made from: its version (3.13) and the CPU its binary is built for.
python_setup() {
    [[ -e $ROOT$PYTHON ]] || die "$ROOT$PYTHON is missing: apt install python3"
    local name
    name=$(readlink "$ROOT$PYTHON" || echo "${PYTHON##*/}")
    name=${name##*/}
    [[ $name =~ ^python3\.([0-9]+)$ ]] || die "cannot tell the version of $ROOT$PYTHON (it is $name, not python3.N)"
    PY_MINOR=${BASH_REMATCH[1]}
    PY_VERSION=3.$PY_MINOR
    # the ELF header's machine field: on a 64-bit kernel, 32-bit Pi OS still reports aarch64 in uname
    case $(od -An -t u2 -j 18 -N 2 "$ROOT/usr/bin/$name" 2>/dev/null | tr -d ' ') in
        183) PY_ARCH=arm64 ;;
        62) PY_ARCH=amd64 ;;
        40) PY_ARCH="32-bit armhf" ;;
        *) PY_ARCH=unknown ;;
    esac
}

# Supported: Raspberry Pi OS trixie and bookworm (64-bit), JetPack 6 (L4T R36), and as "generic"
# other 64-bit Debian/Ubuntu systems with Python 3.10 or newer. LiteRT has no 32-bit wheels.
check_release() {
    local codename tegra
    codename=$(sed -n 's/^VERSION_CODENAME=//p' "$ROOT/etc/os-release" 2>/dev/null | tr -d '"')
    case $PLATFORM in
        pi)
            [[ $PY_ARCH == arm64 ]] ||
                die "Raspberry Pi OS ${codename:-?} is $PY_ARCH; moodcast needs 64-bit Raspberry Pi OS (trixie or bookworm): LiteRT has no wheels for $PY_ARCH"
            [[ $codename == trixie || $codename == bookworm ]] ||
                die "Raspberry Pi OS '${codename:-unknown}' is not supported; moodcast supports 64-bit Raspberry Pi OS trixie and bookworm" ;;
        jetson)
            tegra=$(head -n1 "$ROOT/etc/nv_tegra_release" 2>/dev/null || true)
            [[ $tegra == "# R36 "* ]] ||
                die "this Jetson runs '${tegra:-no /etc/nv_tegra_release}'; moodcast supports JetPack 6 (L4T R36)"
            [[ $PY_ARCH == arm64 ]] || die "JetPack with a $PY_ARCH Python is not supported; moodcast supports JetPack 6 (arm64)" ;;
        generic)
            [[ $PY_ARCH == arm64 || $PY_ARCH == amd64 ]] ||
                die "this system's Python is $PY_ARCH; moodcast needs a 64-bit system (amd64 or arm64): LiteRT has no wheels for $PY_ARCH" ;;
    esac
    [[ $PY_MINOR -ge 10 ]] || die "Python $PY_VERSION is too old; moodcast needs Python 3.10 or newer"
    echo "system: ${codename:-unknown release}, Python $PY_VERSION ($PY_ARCH)"
}

platform_setup() {
    if [[ -z $PLATFORM ]]; then
        PLATFORM=$(detect_platform)
        [[ $PLATFORM != unknown ]] ||
            die "cannot tell the platform (no Raspberry Pi or Jetson model, no /etc/debian_version); pass --platform pi|jetson|generic"
        echo "platform: $PLATFORM (detected)"
    else
        echo "platform: $PLATFORM"
    fi
    case $PLATFORM in
        pi)
            [[ -n $CAMERA ]] || CAMERA=csi
            # libcamera's Python bindings exist only as Pi OS packages: the venv must see them
            # (and apt's python3-systemd); a USB webcam needs no Pi camera stack
            APT_PACKAGES=(python3-venv python3-systemd)
            [[ $CAMERA != csi ]] || APT_PACKAGES+=(python3-picamera2)
            SYSTEM_SITE=1 ;;
        jetson)
            [[ -n $CAMERA ]] || CAMERA=csi
            # JetPack's OpenCV has GStreamer (nvarguscamerasrc); pip's opencv wheels do not
            APT_PACKAGES=(python3-venv python3-systemd)
            SYSTEM_SITE=1 ;;
        generic)
            [[ -n $CAMERA ]] || CAMERA=usb
            # systemd-python (journal fields) is built from pip against libsystemd
            APT_PACKAGES=(python3-venv python3-dev gcc pkg-config libsystemd-dev)
            SYSTEM_SITE=0 ;;
    esac
    if [[ $PLATFORM == pi && $CAMERA == csi ]]; then
        CAMERA_EXAMPLE=pi-csi.toml
    elif [[ $PLATFORM == jetson && $CAMERA == csi ]]; then
        CAMERA_EXAMPLE=jetson-csi.toml
    elif [[ $CAMERA == csi ]]; then
        die "--camera csi needs --platform pi or jetson; use --camera usb"
    else
        CAMERA_EXAMPLE=usb-webcam.toml
    fi
    [[ $WITH_MOSQUITTO -eq 0 ]] || APT_PACKAGES+=(mosquitto mosquitto-clients)
}

# ---------------------------------------------------------------------------------------------
# Install steps

install_apt_packages() {
    local missing=() p
    if [[ $ON_SYSTEM -eq 1 ]]; then
        for p in "${APT_PACKAGES[@]}"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
    else
        missing=("${APT_PACKAGES[@]}")
    fi
    if [[ ${#missing[@]} -eq 0 ]]; then
        say unchanged "apt packages: ${APT_PACKAGES[*]}"
        return
    fi
    run apt-get update
    # no recommends: python3-picamera2 would otherwise pull in a desktop GUI stack
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

create_user() {
    if [[ $ON_SYSTEM -eq 1 ]] && getent passwd "$SERVICE_USER" >/dev/null; then
        if id -nG "$SERVICE_USER" | tr ' ' '\n' | grep -qx video; then
            say unchanged "user $SERVICE_USER (groups: $(id -nG "$SERVICE_USER"))"
        else
            run usermod -aG video "$SERVICE_USER"
        fi
        return
    fi
    run useradd --system --user-group --groups video --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "moodcast daemon" "$SERVICE_USER"
}

# Requirements of the installed package, minus those the platform provides itself.
write_requirements() {   # write_requirements OUTFILE SKIP...
    local out=$1; shift
    "$VENV/bin/python" - "$@" >"$out" <<'PY'
import re, sys
from importlib.metadata import requires
skip = {s.lower() for s in sys.argv[1:]}
for req in requires("moodcast") or []:
    if "extra ==" in req:   # optional extras (train, test, demo) are not for the device
        continue
    if re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0].lower() not in skip:
        print(req)
PY
}

# What gets installed from the checkout (also the list of paths copied for the build).
source_parts() {
    local f
    for f in pyproject.toml README.md LICENSE daemon; do [[ ! -e $SRC/$f ]] || echo "$f"; done
}

source_digest() {
    local parts
    mapfile -t parts < <(source_parts)
    (cd "$SRC" && find "${parts[@]}" -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' -print0 |
        LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

# The numpy the system Python sees (a system-wide pip's first, then apt's), as its version; nothing
# if there is none. Debian's python3-numpy is numpy-V.egg-info (bookworm, Ubuntu 22.04) or
# numpy-V.dist-info (trixie).
system_numpy() {
    local dir meta
    for dir in "$ROOT/usr/local/lib/python$PY_VERSION/dist-packages" "$ROOT/usr/lib/python3/dist-packages"; do
        for meta in "$dir"/numpy-*.dist-info "$dir"/numpy-*.egg-info; do
            [[ -e $meta ]] || continue
            meta=${meta##*/numpy-}
            echo "${meta%.*-info}"
            return
        done
    done
}

# pip constraints for the venv. With system site packages the venv sees the system's compiled
# packages (picamera2's simplejpeg and av, JetPack's cv2), built against the system's numpy: the
# venv must keep that numpy's major version and not go below it (numpy's ABI only goes forward),
# so pip uses the system's numpy when it satisfies moodcast. Trixie: numpy 2.2 and Python 3.13,
# which has no numpy 1.x wheels; bookworm: 1.24; JetPack 6: 1.21. No system numpy: no constraint.
write_constraints() {   # write_constraints OUTFILE
    local out=$1 numpy major
    : >"$out"
    [[ $SYSTEM_SITE -eq 1 ]] || return 0
    numpy=$(system_numpy)
    if [[ -z $numpy ]]; then
        echo "numpy: none on the system; the venv gets its own"
        return 0
    fi
    major=${numpy%%.*}
    [[ $major =~ ^[0-9]+$ ]] || die "cannot read the system numpy's version '$numpy'"
    if [[ $major -lt 2 && $PY_MINOR -ge 13 ]]; then
        die "the system numpy $numpy is 1.x, but Python $PY_VERSION has no numpy 1.x wheels; install the distribution's python3-numpy (2.x)"
    fi
    echo "numpy: $numpy on the system; the venv keeps numpy $major.x, at least $numpy"
    echo "numpy>=$numpy,<$((major + 1))" >>"$out"
    # opencv-python-headless 4.11+ requires numpy 2; 4.10 is the last one for numpy 1.x
    if [[ $major -lt 2 && $PLATFORM != jetson ]]; then
        echo "opencv-python-headless<4.11" >>"$out"
    fi
}

install_python_package() {
    local venv_flags=() skip=() stamp digest
    [[ $SYSTEM_SITE -eq 0 ]] || venv_flags=(--system-site-packages)
    [[ $PLATFORM != jetson ]] || skip=(opencv-python-headless opencv-python)

    local constraints=$TMP/constraints.txt
    write_constraints "$constraints"
    put_file "$constraints" "$OPT/constraints.txt" 644
    # The stamp records what is installed, so an unchanged source is not reinstalled; a new
    # system numpy (python3-picamera2 installed later) changes the constraints, and so reinstalls.
    digest="$(source_digest) platform=$PLATFORM constraints=$(tr '\n' ' ' <"$constraints")"
    stamp=$OPT/installed-source.sha256

    if [[ $ON_SYSTEM -eq 0 ]]; then   # a venv has its absolute path baked in: only on the real system
        run "$PYTHON" -m venv "${venv_flags[@]}" "$VENV"
        run "$VENV/bin/pip" install --no-deps "$SRC"
        say skipped "$VENV/bin/pip install -c $OPT/constraints.txt (the requirements of moodcast${skip[*]:+ except ${skip[*]}}, --root)"
        [[ $PLATFORM != generic ]] || run "$VENV/bin/pip" install -c "$OPT/constraints.txt" systemd-python
        run "$SRC/deploy/trim-venv" "$VENV"
        return
    fi
    if [[ -x $VENV/bin/python ]]; then
        local want=false
        [[ $SYSTEM_SITE -eq 0 ]] || want=true
        if ! grep -qx "include-system-site-packages = $want" "$VENV/pyvenv.cfg"; then
            say_change recreate recreated "$VENV (system site packages: $want)"
            [[ $DRY_RUN -eq 1 ]] || rm -rf "$VENV" "$stamp"
        fi
    fi
    if [[ -f $stamp && $(cat "$stamp") == "$digest" && -x $VENV/bin/moodcast ]]; then
        say unchanged "$VENV (moodcast from $SRC)"
        return
    fi
    [[ -x $VENV/bin/python ]] || run "$PYTHON" -m venv "${venv_flags[@]}" "$VENV"
    local reqs="(the requirements of moodcast${skip[*]:+ except ${skip[*]}})"
    if [[ $DRY_RUN -eq 1 ]]; then
        run "$VENV/bin/pip" install --no-deps "$SRC"
        say would-run "$VENV/bin/pip install -c $OPT/constraints.txt $reqs"
        CHANGED=$((CHANGED + 1))
        [[ $PLATFORM != generic ]] || run "$VENV/bin/pip" install -c "$OPT/constraints.txt" systemd-python
        run "$SRC/deploy/trim-venv" "$VENV"
        return
    fi
    # build from a copy: pip builds in the source tree and would leave root-owned files in a checkout
    local parts
    mapfile -t parts < <(source_parts)
    mkdir -p "$TMP/src"
    (cd "$SRC" && tar -cf - --exclude=__pycache__ --exclude='*.egg-info' "${parts[@]}") | tar -xf - -C "$TMP/src"
    say building "moodcast from $SRC"
    run "$VENV/bin/pip" install --quiet --no-deps "$TMP/src"
    write_requirements "$TMP/requirements.txt" "${skip[@]}"
    run "$VENV/bin/pip" install --quiet -c "$OPT/constraints.txt" -r "$TMP/requirements.txt"
    [[ $PLATFORM != generic ]] || run "$VENV/bin/pip" install --quiet -c "$OPT/constraints.txt" systemd-python
    run "$SRC/deploy/trim-venv" "$VENV"
    echo "$digest" >"$stamp"
    post_install_checks
}

# What the service will import, checked once so that a broken camera stack shows up here.
post_install_checks() {
    local py=$VENV/bin/python
    case $PLATFORM in
        pi)
            [[ $CAMERA != csi ]] || "$py" -c 'import picamera2' 2>/dev/null ||
                echo "install.sh: warning: picamera2 does not import in $VENV; is python3-picamera2 installed?" >&2 ;;
        jetson)
            "$py" -c 'import cv2, sys; sys.exit("GStreamer: YES" not in " ".join(cv2.getBuildInformation().split()))' \
                2>/dev/null || echo "install.sh: warning: OpenCV in $VENV lacks GStreamer; install JetPack's:" \
                "sudo apt install nvidia-opencv" >&2 ;;
    esac
    "$py" -c 'import systemd.journal' 2>/dev/null ||
        echo "install.sh: note: systemd-python is missing; logs go to the journal without MOOD= fields" >&2
}

# Reference config.toml with the chosen camera example's keys merged into its [camera] table.
render_config() {   # render_config OUTFILE
    awk -v snippet="$SRC/deploy/examples/$CAMERA_EXAMPLE" '
        BEGIN {
            while ((getline line < snippet) > 0)
                if (line ~ /^[a-z_]+[ ]*=/) { key = line; sub(/[ ]*=.*/, "", key); value[key] = line }
        }
        /^\[/ { section = $0 }
        section == "[camera]" && /^[a-z_]+[ ]*=/ {
            key = $0; sub(/[ ]*=.*/, "", key)
            if (key in value) { print value[key]; next }
        }
        { print }
    ' "$SRC/config.toml" >"$1"
}

install_config() {
    ensure_dir "$ETC" 755
    render_config "$TMP/config.toml"
    if [[ -e $ROOT$ETC/config.toml ]]; then
        if cmp -s "$TMP/config.toml" "$ROOT$ETC/config.toml"; then
            say unchanged "$ROOT$ETC/config.toml"
        else
            say kept "$ROOT$ETC/config.toml (yours; the current reference is $SHARE/config.toml)"
        fi
    else
        put_file "$TMP/config.toml" "$ETC/config.toml" 644
    fi
}

install_credentials() {
    # root-only: systemd's LoadCredential= reads them as root and hands the service private copies
    ensure_dir "$CRED_DIR" 700
    local name dest
    for name in "${SECRETS[@]}"; do
        dest=$ROOT$CRED_DIR/$name
        if [[ -f $dest ]]; then
            if [[ $(mode_of "$dest") == 600 ]]; then
                say unchanged "$dest"
            else
                say_change chmod chmod "600 $dest (was $(mode_of "$dest"))"
                [[ $DRY_RUN -eq 1 ]] || chmod 600 "$dest"
                CHANGED=$((CHANGED + 1))
            fi
        else
            # an empty file means "not used"; LoadCredential= fails the start if the file is missing
            : >"$TMP/empty"
            put_file "$TMP/empty" "$CRED_DIR/$name" 600
        fi
    done
}

install_unit() {
    local before=$CHANGED
    put_file "$SRC/systemd/moodcast.service" "$UNIT_DIR/$UNIT" 644
    if [[ $PLATFORM == jetson ]]; then
        put_file "$SRC/systemd/moodcast.service.d/jetson.conf" "$UNIT_DIR/$UNIT.d/jetson.conf" 644
    fi
    put_file "$SRC/deploy/moodcast-as-service" "$HELPER" 755
    UNIT_CHANGED=$((CHANGED - before))
}

install_mosquitto_config() {
    local before=$CHANGED
    put_file "$SRC/deploy/mosquitto/moodcast.conf" "$MOSQUITTO_CONF" 644
    MOSQUITTO_CHANGED=$((CHANGED - before))
}

install_share() {
    put_file "$SRC/config.toml" "$SHARE/config.toml" 644
    put_file "$SRC/docs/install.md" "$SHARE/install.md" 644
    local f
    for f in "$SRC"/deploy/examples/*.toml; do
        put_file "$f" "$SHARE/examples/$(basename "$f")" 644
    done
}

# systemctl needs a running systemd: a chroot or an SD-card image being built has none (and maybe
# no systemctl at all). There the unit is enabled as systemctl enable would, for the next boot.
systemd_running() { [[ $ON_SYSTEM -eq 1 && -d /run/systemd/system ]]; }
no_systemd() { if [[ $ON_SYSTEM -eq 0 ]]; then echo "--root"; else echo "systemd is not running"; fi; }

# The links systemctl enable makes from the unit's [Install] section:
# WantedBy=multi-user.target -> /etc/systemd/system/multi-user.target.wants/moodcast.service
wants_links() {
    local targets target
    read -ra targets < <(sed -n 's/^WantedBy=//p' "$SRC/systemd/$UNIT" | tr '\n' ' ') || true
    for target in "${targets[@]}"; do
        echo "$UNIT_DIR/$target.wants/$UNIT"
    done
}

ensure_link() {   # ensure_link PATH TARGET
    local dest=$ROOT$1
    if [[ -L $dest && $(readlink "$dest") == "$2" ]]; then
        say unchanged "$dest -> $2"
        return
    fi
    say_change link linked "$dest -> $2"
    if [[ $DRY_RUN -eq 0 ]]; then
        mkdir -p "$(dirname "$dest")"
        ln -sfn "$2" "$dest"
    fi
    CHANGED=$((CHANGED + 1))
}

enable_service() {
    if ! systemd_running; then
        local link why
        why=$(no_systemd)
        while read -r link; do ensure_link "$link" "$UNIT_DIR/$UNIT"; done < <(wants_links)
        say skipped "systemctl daemon-reload and restart ($why): $UNIT is enabled and starts at the next boot"
        if [[ $WITH_MOSQUITTO -eq 1 ]]; then
            say skipped "systemctl enable --now mosquitto.service ($why): the mosquitto package enables it for the next boot"
        fi
        return
    fi
    [[ $UNIT_CHANGED -eq 0 ]] || run systemctl daemon-reload
    if systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then
        say unchanged "$UNIT enabled"
    else
        run systemctl enable "$UNIT"
    fi
    if [[ $WITH_MOSQUITTO -eq 1 ]] && ! systemctl is-enabled --quiet mosquitto.service 2>/dev/null; then
        run systemctl enable --now mosquitto.service
    elif [[ $WITH_MOSQUITTO -eq 1 && $MOSQUITTO_CHANGED -gt 0 ]] && systemctl is-active --quiet mosquitto.service; then
        run systemctl reload mosquitto.service   # max_packet_size is reloaded on SIGHUP
    fi
    # an upgrade takes effect at once if the service is running
    if [[ $CHANGED -gt 0 ]] && systemctl is-active --quiet "$UNIT" 2>/dev/null; then
        run systemctl restart "$UNIT"
    fi
}

next_steps() {
    local start="Start it and watch the log:
       sudo systemctl start $UNIT"
    # a chroot or an image being built: nothing to start here, the unit is enabled for the next boot
    systemd_running || start="It starts at the next boot ($(no_systemd) now); then watch the log:"
    cat <<EOF

Next steps:
  1. Edit $ETC/config.toml (camera, [mqtt] host/username), then check it as the service sees it:
       sudo $HELPER check-config -c $ETC/config.toml
  2. Secrets, only those you use (each is read from standard input and stored with mode 0600):
       sudo $0 --set-secret mqtt_password
       sudo $0 --set-secret spotify_client_secret
       sudo $0 --set-secret youtube_api_key
  3. Spotify (optional, Premium): authorise once as the service user, then choose the speaker and
     autoplay (it shows the lines to add to $ETC/config.toml):
       sudo $HELPER spotify-auth -c $ETC/config.toml
  4. Try the broker, Spotify and YouTube with those settings (one line each, a few seconds):
       sudo $HELPER check-config --online -c $ETC/config.toml
  5. $start
       systemctl status $UNIT
       journalctl -u $UNIT -f            (only mood changes: journalctl -u $UNIT MOOD=happy)
  Guide and troubleshooting: $SHARE/install.md
EOF
}

summary() {
    if [[ $DRY_RUN -eq 1 ]]; then echo "$CHANGED to change (dry run: nothing was changed)"; else echo "$CHANGED changed"; fi
}

do_install() {
    platform_setup
    python_setup
    check_release
    echo "camera: $CAMERA ($CAMERA_EXAMPLE)"
    install_apt_packages
    create_user
    ensure_dir "$OPT" 755
    install_share
    install_python_package
    install_config
    install_credentials
    install_unit
    [[ $WITH_MOSQUITTO -eq 0 ]] || install_mosquitto_config
    enable_service
    summary
    next_steps
}

do_uninstall() {
    local link
    if systemd_running; then
        ! systemctl cat "$UNIT" >/dev/null 2>&1 || run systemctl disable --now "$UNIT"
    else
        while read -r link; do remove_path "$link"; done < <(wants_links)
    fi
    remove_path "$UNIT_DIR/$UNIT"
    remove_path "$UNIT_DIR/$UNIT.d/jetson.conf"
    if [[ -d $ROOT$UNIT_DIR/$UNIT.d && -z $(ls -A "$ROOT$UNIT_DIR/$UNIT.d") ]]; then
        remove_path "$UNIT_DIR/$UNIT.d"
    fi
    remove_path "$HELPER"
    if [[ -e $ROOT$MOSQUITTO_CONF ]]; then   # the broker keeps running, without moodcast's bound
        remove_path "$MOSQUITTO_CONF"
        ! systemd_running || ! systemctl is-active --quiet mosquitto.service || run systemctl reload mosquitto.service
    fi
    remove_path "$OPT"
    if systemd_running; then run systemctl daemon-reload; else say skipped "systemctl daemon-reload ($(no_systemd))"; fi
    if [[ $PURGE -eq 1 ]]; then
        remove_path "$ETC"
        remove_path "$STATE"
        if [[ $ON_SYSTEM -eq 0 ]] || getent passwd "$SERVICE_USER" >/dev/null; then
            run userdel "$SERVICE_USER"
        fi
    else
        echo "kept $ROOT$ETC (config.toml, credentials) and $ROOT$STATE (Spotify token, caches);" \
             "remove them with: sudo $0 --uninstall --purge"
    fi
    summary
}

do_set_secret() {
    local value
    if [[ -t 0 ]]; then
        read -rsp "value for $SECRET_NAME (not shown): " value
        echo
    else
        IFS= read -r value || [[ -n $value ]] || die "--set-secret $SECRET_NAME: nothing on standard input"
    fi
    [[ -n $value ]] || die "--set-secret $SECRET_NAME: the value is empty"
    ensure_dir "$ETC" 755
    ensure_dir "$CRED_DIR" 700
    (umask 077 && printf '%s\n' "$value" >"$TMP/secret")
    put_file "$TMP/secret" "$CRED_DIR/$SECRET_NAME" 600
    if systemd_running && systemctl is-active --quiet "$UNIT" 2>/dev/null; then
        echo "restart the service to use it: sudo systemctl restart $UNIT"
    fi
}

case $ACTION in
    install) do_install ;;
    uninstall) do_uninstall ;;
    secret) do_set_secret ;;
esac
