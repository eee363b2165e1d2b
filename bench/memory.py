"""Resident memory (RSS) of the platform's processes, idle and at the peak of a load; how busy the cores were."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CoreUse:
    """How busy each core was, from /proc/stat, between this object's making and ``since()``."""

    def __init__(self) -> None:
        self.start = self._read()

    @staticmethod
    def _read() -> dict[str, tuple[int, int]]:
        found: dict[str, tuple[int, int]] = {}
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith("cpu") and not line.startswith("cpu "):
                    name, *ticks = line.split()
                    values = [int(t) for t in ticks]
                    found[name] = (sum(values), values[3] + values[4])  # all, idle + iowait
        return found

    def since(self) -> dict[str, float]:
        now = self._read()
        return {
            name: round(1 - (now[name][1] - idle) / max(1, now[name][0] - total), 3)
            for name, (total, idle) in self.start.items()
            if name in now
        }


def rss_mb(pid: int) -> float:
    """The process's resident set size in MiB, from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def snapshot(pids: dict[str, int]) -> dict[str, float]:
    return {name: rss_mb(pid) for name, pid in pids.items()}


class Peak:
    """The highest RSS each process reached while sampled."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.highest = snapshot(pids)

    def sample(self) -> None:
        for name, mb in snapshot(self.pids).items():
            self.highest[name] = max(self.highest[name], mb)


@contextmanager
def peak_while(pids: dict[str, int], every: float = 0.5) -> Iterator[Peak]:
    """Samples the processes' RSS every ``every`` seconds while the block runs."""
    peak = Peak(pids)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(every):
            peak.sample()

    watcher = threading.Thread(target=watch, name="rss-sampler", daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        done.set()
        watcher.join()
        peak.sample()
