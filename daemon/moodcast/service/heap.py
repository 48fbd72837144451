"""Give large freed buffers back to the system at once, so a burst of big messages leaves no lasting RSS.

glibc serves a large allocation with its own mmap, and when that is freed it raises its mmap
threshold to the freed size (up to 32 MiB). From then on, buffers of that size come from the heap,
and the heap keeps its peak. paho reads a whole MQTT message before the daemon can refuse it, so one
burst of eight 30 MB commands left the daemon 58-120 MB bigger for good (tests/test_command_faults.py).
Setting the threshold once turns that adjustment off. The threshold is 4 MiB, above a camera frame
(0.9 MB at 640x480), so the frame loop's buffers stay on the heap and cost no extra page faults.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("moodcast.heap")
M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BUFFER = 4 << 20


def return_large_buffers(threshold: int = LARGE_BUFFER) -> bool:
    """Pin malloc's mmap threshold; False where the C library is not glibc (nothing to pin there)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    done = bool(mallopt(M_MMAP_THRESHOLD, threshold))
    log.debug("malloc mmap threshold %s at %d bytes", "pinned" if done else "not pinned", threshold)
    return done
