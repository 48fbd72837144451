"""The daemon's one way out to MQTT: every message is stamped here, once, and the retained state and
the stats are rate-limited here.

The frame loop and the recommendation worker both publish through it; MqttLink (thread-safe, never
blocking) does the rest. Without MQTT (`[mqtt] enabled = false`) everything is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from moodcast.mqtt import homeassistant, payloads
from moodcast.mqtt.link import MqttLink
from moodcast.mqtt.payloads import Message, State

STATE_REFRESH_S = 1.0  # at most this often for score-only updates of the retained state
SCORE_CHANGE = 0.05  # ...and only when a score moved by this much


class Publisher:
    def __init__(self, link: MqttLink | None, stats_interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.link = link
        self.stats_interval_s = stats_interval_s
        self._clock = clock
        self._last_state: tuple[tuple, Mapping[str, float]] | None = None
        self._last_state_at = 0.0
        self._last_stats_at = clock()
        self._stats_at_start = True  # else Home Assistant shows the previous run's fps and CPU until the first stats

    def publish(self, message: Message) -> None:
        self.publish_body(message.kind, message.body())

    def publish_body(self, kind: str, body: Mapping[str, Any]) -> None:
        """For bodies built elsewhere (the recommendation worker's); payloads.stamp adds schema and time."""
        if self.link:
            self.link.publish(kind, payloads.stamp(body))

    def state(self, state: State, force: bool = False) -> None:
        """The retained state, when something but the scores changed, or a score moved by SCORE_CHANGE
        (at most once per STATE_REFRESH_S), or `force`."""
        key = (state.mood, state.faces, state.paused, state.policy, state.autoplay, state.room)
        now = self._clock()
        last = self._last_state
        moved = last is None or any(abs(v - last[1].get(k, 0)) >= SCORE_CHANGE for k, v in state.scores.items())
        if not force and last and key == last[0] and not (moved and now - self._last_state_at >= STATE_REFRESH_S):
            return
        self._last_state, self._last_state_at = (key, state.scores), now
        self.publish(state)

    def stats_due(self, force: bool = False) -> bool:
        """Every stats_interval_s, once as soon as the broker is connected, or when forced (snapshot_stats)."""
        now = self._clock()
        at_start = self._stats_at_start and self.link is not None and self.link.connected.is_set()
        if not (force or at_start) and now - self._last_stats_at < self.stats_interval_s:
            return False
        self._stats_at_start = self._stats_at_start and not at_start
        self._last_stats_at = now
        return True

    def discovery(self, version: str) -> None:
        """Home Assistant's discovery configs (retained)."""
        if not self.link:
            return
        for topic, cfg in homeassistant.discovery_messages(self.link.topics, version):
            self.link.publish_raw(topic, payloads.encode(cfg), qos=1, retain=True)
