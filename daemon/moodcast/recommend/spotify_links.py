"""Spotify links as users give them: `spotify:playlist:ID` URIs, or the open.spotify.com links the
app's Share > Copy link gives. The configuration keeps the URI; recommendations show the link."""

from __future__ import annotations

import re

_URI = re.compile(r"^spotify:(playlist|album|artist|track):([A-Za-z0-9]{1,64})$")
_URL = re.compile(r"^https://open\.spotify\.com/(?:intl-[\w-]+/)?(playlist|album|artist|track)/([A-Za-z0-9]{1,64})(?:\?.*)?$")


def _match(text: str) -> re.Match[str] | None:
    return _URI.match(text.strip()) or _URL.match(text.strip())


def link_problem(text: str) -> str | None:
    """Why `text` is not a Spotify link moodcast can play, or None."""
    if _match(text):
        return None
    return "expected spotify:playlist|album|artist|track:ID or an open.spotify.com link"


def to_uri(text: str) -> str:
    """`spotify:playlist:ID` or an open.spotify.com link -> the URI; ValueError for anything else."""
    match = _match(text)
    if not match:
        raise ValueError(link_problem(text))
    return f"spotify:{match.group(1)}:{match.group(2)}"


def uri_to_url(uri: str) -> str:
    _, kind, ident = uri.split(":")
    return f"https://open.spotify.com/{kind}/{ident}"
