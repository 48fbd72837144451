"""Config files for a daemon under test or bench, from dicts: {"camera": {...}, "mqtt.tls": {...}} -> TOML text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    """A TOML scalar or array: JSON's strings, numbers and lists are valid TOML; booleans are lower case."""
    return str(value).lower() if isinstance(value, bool) else json.dumps(value)


def toml_text(sections: Mapping[str, Mapping[str, Any]]) -> str:
    return "".join(f"[{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in values.items()) + "\n"
                   for name, values in sections.items())


def write_toml(path: Path, sections: Mapping[str, Mapping[str, Any]]) -> Path:
    path.write_text(toml_text(sections))
    return path
