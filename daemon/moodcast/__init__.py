"""moodcast: on-device facial emotion → MQTT, music and video recommendations."""

__version__ = "0.1.0"
