"""A throwaway MQTT broker on 127.0.0.1 for `moodcast demo` on a machine without one (amqtt)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
import threading
from typing import Any


class EmbeddedBroker:
    def __init__(self, port: int = 0):
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._broker: Any = None  # amqtt.broker.Broker, imported when started
        self._thread = threading.Thread(target=self._serve, name="embedded-broker", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self) -> EmbeddedBroker:
        try:
            from amqtt.broker import Broker  # the `demo` extra; a real deployment uses its own broker
        except ImportError:
            raise RuntimeError("the embedded broker needs amqtt: pip install 'moodcast[demo]'") from None
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)  # its INFO chatter would drown the demo
        config = {"listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
                  "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        self._broker = Broker(config, loop=self._loop)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise RuntimeError(f"embedded broker failed to start: {self._error}")
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._broker.start())
        except BaseException as e:  # reported to start(); the thread then ends
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self, timeout: float = 3.0) -> None:
        if not (self._broker and self._thread.is_alive()):
            return
        logging.getLogger("amqtt").setLevel(logging.CRITICAL)  # its cancelled tasks are expected now
        shutdown = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            shutdown.result(timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            shutdown.cancel()  # amqtt can wait on idle client sessions; nothing of value is lost
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now; never 1883, which a packaged broker may hold."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 1883:
            return port
