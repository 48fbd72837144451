"""Signal handlers for `moodcast run`, installed before anything slow is imported.

Importing LiteRT and OpenCV and loading the model take a while (seconds on a Pi); until the
daemon's loop runs, SIGINT would print a KeyboardInterrupt traceback and SIGHUP (the default
action: terminate) would kill the process. Installed first, they are remembered instead: a stop
or a reload asked for during start-up is carried out as soon as the loop runs.
"""

from __future__ import annotations

import signal
import threading


class EarlySignals:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()

    @classmethod
    def install(cls) -> EarlySignals:
        signals = cls()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: signals.stop.set())
        signal.signal(signal.SIGHUP, lambda *_: signals.reload.set())
        return signals
