"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback.

Every such error derives from MoodcastError, so this module imports nothing of moodcast's and
the modules that raise them (config, secrets, camera, classifier, detector, ...) depend on it,
not the other way round.
"""

from __future__ import annotations

EX_FAIL = 1  # sysexits: a failure worth a restart (a camera that may come back)
EX_UNAVAILABLE = 69  # sysexits EX_UNAVAILABLE: a service (broker, Spotify, YouTube) cannot be reached now
EX_CONFIG = 78  # sysexits EX_CONFIG: systemd does not restart on it (RestartPreventExitStatus=78)


class MoodcastError(Exception):
    """A problem worded for the user. `exit_code` is what the CLI exits with: EX_CONFIG for what only
    editing the configuration (or a secret, or a model file) can mend, so systemd does not restart-loop."""

    exit_code = EX_FAIL


class ServiceUnavailable(MoodcastError):
    """A configured service that cannot be reached now (down, refused, timed out); trying later may work."""

    exit_code = EX_UNAVAILABLE


def exit_code(error: BaseException) -> int:
    return error.exit_code if isinstance(error, MoodcastError) else EX_FAIL
