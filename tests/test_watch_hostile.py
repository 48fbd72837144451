"""`moodcast watch` against hostile messages on a real Mosquitto: escape sequences stay escaped,
wrong types and megabytes are one short line, and watch keeps listening afterwards."""

from bench.mosquitto import publish
from tests.test_cli import Lines, write_config

HOSTILE = [
    ("state", b'{"mood": "happy", "confidence": "high", "faces": 1}'),      # a wrongly typed field
    ("event", b'{"type": "\\u001b[2J\\u001b]0;owned\\u0007", "x": "a\\nfake line"}'),  # clear screen, title, \n
    ("stats", b"x" * 5_000_000),                                              # 5 MB
    ("event", b'{"type": "mood_changed", "confidence": [1]}'),
]


def test_watch_survives_hostile_payloads(tmp_path, mosquitto):
    path = write_config(tmp_path, f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\ndevice_id = "cam"\n')
    watch = Lines("watch", str(path))
    try:
        watch.wait_for(lambda lines: any(line.startswith("watching ") for line in lines))
        publish(mosquitto, "moodcast/cam/availability", "warming up", retain=True)
        watch.wait_for(lambda lines: any("warming up" in line for line in lines))  # subscribed
        for kind, payload in HOSTILE:
            publish(mosquitto, f"moodcast/cam/{kind}", payload)
        publish(mosquitto, "moodcast/cam/availability", "online")
        lines = watch.wait_for(lambda lines: any(line.rstrip().endswith("online") for line in lines))
    finally:
        watch.stop()
    shown = lines[lines.index(next(line for line in lines if "warming up" in line)) + 1:]
    assert len(shown) == len(HOSTILE) + 1, shown  # one line each: no fake lines through \n
    assert all("\x1b" not in line and "\x07" not in line and len(line) < 400 for line in shown)
    assert "unexpected payload" in shown[0] and "5000000 bytes, not shown" in shown[2]
    assert "\\x1b[2J" in shown[1]
