"""Logging: journal entries with structured fields under systemd, readable stderr lines otherwise.

Callers attach journal fields with `extra`, e.g.
    log.info("mood changed to happy", extra={"MOOD": "happy", "CONFIDENCE": "0.83", "COMPONENT": "tracker"})
so that `journalctl -u moodcast MOOD=happy` finds the entry. Every record gets a COMPONENT
(the logger name without the "moodcast." prefix unless the caller gives one). A line that a remote
party (or a looped replay) can trigger at will goes through a RateLimitedLog.

Three modes, chosen once per setup_logging() call:
- stderr is the journal ($JOURNAL_STREAM names stderr's device:inode) and systemd-python is
  importable (apt python3-systemd; pip systemd-python needs libsystemd-dev): native journal
  protocol through systemd.journal.JournalHandler, with the fields above;
- stderr is the journal but systemd-python is missing: one line per record with a "<N>" syslog
  priority prefix, which journald turns into the entry's priority (fields are lost);
- anything else (a terminal, a file, a pipe): "HH:MM:SS LEVEL component: message".
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

SYSLOG_IDENTIFIER = "moodcast"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


@contextlib.contextmanager
def native_stderr_to_log(name: str):
    """Route what C++ libraries write straight to file descriptor 2 (LiteRT's "INFO: Created TensorFlow
    Lite XNNPACK delegate for CPU.") through logger `name`: their INFO lines at debug, anything else at
    warning, so nothing that matters is hidden. Only for short, single-threaded stretches such as
    loading a model: whatever else writes to stderr meanwhile is re-logged the same way."""
    log = logging.getLogger(name)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if line.strip():
                    log.log(logging.DEBUG if line.startswith("INFO: ") else logging.WARNING, "%s", line.strip())


@dataclass
class _Window:
    started: float
    lines: int = 0
    held_back: int = 0


class RateLimitedLog:
    """At most `burst` lines per key every `interval_s`: for the lines that someone else decides how
    often we write (a flood of junk commands, Home Assistant restarting in a loop, a looped replay of
    unreadable files). A line after a held-back stretch says how many were held back. Keys name a
    kind of line ("rejected command"), never something remote: the table of keys stays small."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0, burst: int = 1):
        self.logger, self.interval_s, self.burst = logger, interval_s, burst
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()  # paho's thread and the frame loop both log

    def log(self, level: int, key: str, msg: str, *args) -> bool:
        """Log `msg % args` unless `key` has had its lines in this interval; True if it was logged."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.started >= self.interval_s:
                held_back = window.held_back if window else 0
                window = self._windows[key] = _Window(now)
            else:
                held_back = 0
            if window.lines >= self.burst:
                window.held_back += 1
                return False
            window.lines += 1
        if held_back:
            msg += f" ({held_back} more like this held back in the {self.interval_s:g} s before)"
        self.logger.log(level, msg, *args)
        return True

    def info(self, key: str, msg: str, *args) -> bool:
        return self.log(logging.INFO, key, msg, *args)

    def warning(self, key: str, msg: str, *args) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def error(self, key: str, msg: str, *args) -> bool:
        return self.log(logging.ERROR, key, msg, *args)


def setup_logging(level: str) -> None:
    """Route all logging to the journal or stderr; safe to call again (e.g. after a reload)."""
    try:
        threshold = _LEVELS[level.lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, got {level!r}") from None
    on_journal = stderr_is_journal()
    handler = _journal_handler() if on_journal else None
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_PrefixFormatter() if on_journal else _ConsoleFormatter())
    handler.addFilter(_add_component)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)


def stderr_is_journal() -> bool:
    """True when systemd connected our stderr to journald (not merely: some parent was a service)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    if not expected or sys.stderr is None:
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or a stream without a file descriptor
        return False
    return expected == f"{st.st_dev}:{st.st_ino}"


def _journal_handler() -> logging.Handler | None:
    try:
        from systemd.journal import JournalHandler
    except ImportError:  # python3-systemd not installed: fall back to prefixed stderr lines
        return None
    handler = JournalHandler(SYSLOG_IDENTIFIER=SYSLOG_IDENTIFIER)
    handler.setFormatter(logging.Formatter("%(message)s"))  # the journal keeps time and priority itself
    return handler


def _add_component(record: logging.LogRecord) -> bool:
    if not getattr(record, "COMPONENT", None):
        name = record.name
        record.COMPONENT = name[len("moodcast."):] if name.startswith("moodcast.") else name
    return True


class _ConsoleFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(COMPONENT)s: %(message)s", datefmt="%H:%M:%S")


class _PrefixFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(COMPONENT)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_syslog_priority(record.levelno)}>{super().format(record)}"


def _syslog_priority(levelno: int) -> int:
    """logging level -> syslog priority, as journald reads it from a "<N>" line prefix."""
    for threshold, priority in ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6)):
        if levelno >= threshold:
            return priority
    return 7
