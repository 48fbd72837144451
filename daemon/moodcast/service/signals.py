"""Signal handlers for `moodcast run`, taken before anything slow is imported.

Importing LiteRT and OpenCV and loading the model take a while (seconds on a Pi); until the
daemon's loop runs, SIGINT would print a KeyboardInterrupt traceback and SIGHUP (the default
action: terminate) would kill the process. So it happens in two steps:

1. remember(), the first thing `moodcast run` does (moodcast/cli/__init__.py): SIGINT, SIGTERM and
   SIGHUP are only noted. It runs about 2 ms after the interpreter is up: this module imports
   nothing but the C module under `signal` (`signal` itself imports enum, 5 ms here, and threading
   costs 4 ms more: together a quarter of the first 20 ms).
2. EarlySignals.install(), once the command line is parsed: what was noted becomes a stop or a
   reload request, carried out as soon as the daemon's loop runs.

What comes before step 1 (the interpreter's own start-up, about 10 ms here) is beyond any handler.
"""

from __future__ import annotations

try:  # CPython's C module: the same signal() as `signal`'s, without the enum wrapping (and no stubs)
    import _signal as _os_signal  # type: ignore[import-not-found]
except ImportError:  # another interpreter
    import signal as _os_signal

STOP_SIGNALS = (_os_signal.SIGTERM, _os_signal.SIGINT)
RELOAD_SIGNALS = (_os_signal.SIGHUP,)
_noted: list[int] = []  # signals that came before install()


def remember() -> None:
    """Note SIGTERM, SIGINT and SIGHUP from now on instead of acting on them."""
    for sig in STOP_SIGNALS + RELOAD_SIGNALS:
        _os_signal.signal(sig, _note)


def _note(signum: int, _frame) -> None:
    _noted.append(signum)


class EarlySignals:
    def __init__(self) -> None:
        import threading  # here, not above: remember() must not wait for it

        self.stop = threading.Event()
        self.reload = threading.Event()

    @classmethod
    def install(cls) -> EarlySignals:
        """Handlers that set `stop` or `reload`; a signal noted by remember() counts as if it came now."""
        signals = cls()
        for sig in STOP_SIGNALS:
            _os_signal.signal(sig, lambda *_: signals.stop.set())
        for sig in RELOAD_SIGNALS:
            _os_signal.signal(sig, lambda *_: signals.reload.set())
        while _noted:  # after the handlers: one arriving meanwhile is either noted here or set directly
            (signals.stop if _noted.pop() in STOP_SIGNALS else signals.reload).set()
        return signals
