"""systemd service notifications (sd_notify) over the plain $NOTIFY_SOCKET datagram protocol.

One code path for every caller: each message is a newline-separated list of KEY=value
assignments sent as a single datagram to the AF_UNIX socket named in $NOTIFY_SOCKET
(a leading '@' means the abstract namespace). Without $NOTIFY_SOCKET — not started by systemd,
or started with Type=simple — every method is a no-op, so the daemon calls them unconditionally.

Sending never raises: a lost notification must not take the daemon down (systemd will notice
a missing READY or WATCHDOG on its own), so failures are logged once at warning level.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger("moodcast.notify")


class Notifier:
    def __init__(self, socket_path: str | None = None):
        path = os.environ.get("NOTIFY_SOCKET") if socket_path is None else socket_path
        self._address: str | None = None
        if path and path[0] in "/@":
            # abstract namespace: systemd writes '@', the kernel wants a leading NUL byte
            self._address = "\0" + path[1:] if path[0] == "@" else path
        elif path:
            log.warning("NOTIFY_SOCKET=%r is not an AF_UNIX path; systemd notifications disabled", path)
        self.watchdog_interval_s: float | None = self._watchdog_interval() if self._address else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._last_watchdog = float("-inf")
        self._warned = False

    @staticmethod
    def _watchdog_interval() -> float | None:
        """Half of WATCHDOG_USEC, as sd_watchdog_enabled() recommends; None when not for us."""
        try:
            usec = int(os.environ.get("WATCHDOG_USEC", ""))
        except ValueError:
            return None
        if usec <= 0:
            return None
        pid = os.environ.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):  # the watchdog belongs to another process (e.g. our parent)
            return None
        return usec / 2 / 1_000_000

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str = "") -> None:
        """Startup (or a reload) is complete; systemd moves the unit to 'active'."""
        self._send("READY=1" + (f"\nSTATUS={_one_line(status)}" if status else ""))

    def status(self, text: str) -> None:
        """Free-form one-line state shown by `systemctl status moodcast`."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Keep-alive, called after each processed frame; sent at most once per watchdog_interval_s."""
        if self.watchdog_interval_s is None:
            return
        now = time.monotonic()
        with self._lock:
            if now - self._last_watchdog < self.watchdog_interval_s:
                return
            self._last_watchdog = now
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """A configuration reload has started; finish it with ready()."""
        # MONOTONIC_USEC lets newer systemd (Type=notify-reload) match the reload to its request
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """Shutdown has begun; systemd stops expecting watchdog pings."""
        self._send("STOPPING=1")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(message.encode("utf-8"), self._address)
            except OSError as e:
                if not self._warned:
                    self._warned = True
                    log.warning("cannot notify systemd at %s: %s", self._address.replace("\0", "@"), e)


def _one_line(text: str) -> str:
    # a newline would start a new KEY=value assignment in the datagram
    return " ".join(text.splitlines())
