"""Fixtures every test module can ask for by name (never import a fixture: that shadows it, F811).

- `mosquitto`, `mosquitto_tls`: a real broker per test (bench.mosquitto);
- `spotify`, `youtube`: the fake Web APIs (tests/fake_spotify.py, tests/fake_youtube.py);
- `daemon_process`: a factory for `moodcast run` child processes; when the test fails, each one's
  output is printed, so the failure report shows what the daemon said.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.mosquitto import Mosquitto
from tests.daemon_process import DaemonProcess
from tests.fake_spotify import FakeSpotify
from tests.fake_youtube import FakeYoutube


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so a fixture can tell at teardown whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(getattr(getattr(request.node, f"report_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.fixture(autouse=True)
def _no_ambient_secrets(monkeypatch):
    """No test (nor a daemon it starts) sees the credentials or systemd directories of the shell it runs in."""
    for name in ("CREDENTIALS_DIRECTORY", "MOODCAST_SPOTIFY_CLIENT_SECRET", "MOODCAST_YOUTUBE_API_KEY",
                 "STATE_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mosquitto(tmp_path) -> Iterator[Mosquitto]:
    """A running anonymous broker on 127.0.0.1:<free port>."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.kill()


@pytest.fixture
def mosquitto_tls(tmp_path) -> Iterator[Mosquitto]:
    """A running broker with only a TLS listener and username/password; see .ca_file, .username, .password."""
    broker = Mosquitto(tmp_path / "mosquitto_tls", tls=True, username="moodcast",
                       password=secrets.token_urlsafe(12)).start()
    yield broker
    broker.kill()


@pytest.fixture
def spotify() -> Iterator[FakeSpotify]:
    with FakeSpotify() as fake:
        yield fake


@pytest.fixture
def youtube() -> Iterator[FakeYoutube]:
    with FakeYoutube() as fake:
        yield fake


@pytest.fixture
def daemon_process(request) -> Iterator[Callable[..., DaemonProcess]]:
    """daemon_process(config_path, *args, env=None) starts `moodcast run`; all are killed at the end of the
    test, and a failed test prints what each of them wrote."""
    started: list[DaemonProcess] = []

    def start(config: Path, *args: str, env: dict | None = None) -> DaemonProcess:
        process = DaemonProcess(config, *args, env=env)
        started.append(process)
        return process

    yield start
    for number, process in enumerate(started, 1):
        text = process.output()  # kills it if it still runs
        if _failed(request):
            print(f"----- output of moodcast run #{number} ({' '.join(process.args)}) -----\n{text}")
