"""moodcast.service.heap: after the mmap threshold is pinned, freed large buffers leave no lasting RSS.

Each case runs in a fresh interpreter, because the threshold is process-wide and sticky."""

import subprocess
import sys

import pytest

PROBE = r"""
import sys
from moodcast.service.heap import return_large_buffers
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
if sys.argv[1] == "pinned":
    assert return_large_buffers()
before = rss_mb()
for _ in range(4):  # what a burst of oversized MQTT payloads does to the allocator
    buf = bytearray(30_000_000)
    buf[::4096] = b"x" * len(buf[::4096])
    del buf
print(round(rss_mb() - before, 1))
"""


def grown_mb(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm; glibc only")
def test_freed_large_buffers_go_back_to_the_system_once_pinned():
    assert grown_mb("default") > 20  # glibc's own behaviour: the threshold rises and the heap keeps 30 MB
    assert grown_mb("pinned") < 5
