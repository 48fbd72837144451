"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

from moodcast.camera import SourceError
from moodcast.cleanup import CleanupError
from moodcast.classifier import ModelError
from moodcast.config import EX_CONFIG, ConfigError
from moodcast.detector import DetectorError
from moodcast.preview import OutputError
from moodcast.secrets import SecretError

USER_ERRORS = (ConfigError, SecretError, ModelError, DetectorError, SourceError, CleanupError, OutputError)


def exit_code(error: Exception) -> int:
    """78 (EX_CONFIG) for configuration, secrets and the detector's model, so systemd does not restart-loop on them."""
    return EX_CONFIG if isinstance(error, (ConfigError, SecretError, DetectorError)) else 1
