"""How every probe in bench/ times its work: wall time in milliseconds (``time.perf_counter``),
repeated, summed up as min / median / max.

    from bench.timing import Probe, repeat, time_n, timed

    elapsed_ms, result = timed(work)                    # once
    spread = time_n(work, 5, before=setup)              # 5 times; setup runs untimed each time
    print(f"{spread} ms (min / median / max)")
    spreads = repeat(5, {"tenderops": Probe(ours, check=verify), "baseline": raw_sql})

``repeat`` interleaves its variants (round 1 runs each once, then round 2, ...), so drift
over a run (caches warming, autovacuum, checkpoints) falls on every variant alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[float, T]:
    """Run ``work`` once; return its wall time in milliseconds and its result."""
    began = time.perf_counter()
    result = work()
    return (time.perf_counter() - began) * 1000, result


@dataclass(frozen=True)
class Spread:
    """Samples in milliseconds, summed up as min / median / max."""

    samples: tuple[float, ...]

    def __init__(self, samples: Iterable[float]) -> None:
        values = tuple(samples)
        if not values:
            raise ValueError("no samples")
        object.__setattr__(self, "samples", values)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def __format__(self, spec: str) -> str:
        spec = spec or ".1f"
        return f"{self.min:{spec}} / {self.median:{spec}} / {self.max:{spec}}"

    def __str__(self) -> str:
        return format(self)


@dataclass(frozen=True)
class Probe:
    """Work to time, with untimed steps around it: ``before`` each run, ``check`` its result."""

    work: Callable[[], Any]
    before: Callable[[], Any] | None = None
    check: Callable[[Any], Any] | None = None

    def run(self) -> float:
        if self.before is not None:
            self.before()
        elapsed, result = timed(self.work)
        if self.check is not None:
            self.check(result)
        return elapsed


def repeat(times: int, variants: Mapping[str, Probe | Callable[[], Any]]) -> dict[str, Spread]:
    """Time every variant ``times`` times, interleaved; a plain callable is a bare Probe."""
    probes = {name: v if isinstance(v, Probe) else Probe(v) for name, v in variants.items()}
    samples: dict[str, list[float]] = {name: [] for name in probes}
    for _ in range(times):
        for name, probe in probes.items():
            samples[name].append(probe.run())
    return {name: Spread(values) for name, values in samples.items()}


def time_n(
    work: Callable[[], Any],
    times: int,
    *,
    before: Callable[[], Any] | None = None,
    check: Callable[[Any], Any] | None = None,
) -> Spread:
    """Time ``work`` ``times`` times (``before`` and ``check`` untimed around each run)."""
    return repeat(times, {"work": Probe(work, before, check)})["work"]


class Samples:
    """Named samples gathered one at a time, where each step needs the last one's result."""

    def __init__(self) -> None:
        self._samples: dict[str, list[float]] = {}

    def record(self, name: str, work: Callable[[], T]) -> T:
        elapsed, result = timed(work)
        self._samples.setdefault(name, []).append(elapsed)
        return result

    def spreads(self) -> dict[str, Spread]:
        return {name: Spread(values) for name, values in self._samples.items()}


class Stopwatch:
    """Milliseconds between laps: for work timed from inside (a callback per batch)."""

    def __init__(self) -> None:
        self._last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self._last = (now - self._last) * 1000, now
        return elapsed


def samples_of(spreads: dict[str, Spread]) -> dict[str, list[float]]:
    """What the worker reports (as JSON) and --with-saved reads back: the raw samples."""
    return {name: list(spread.samples) for name, spread in spreads.items()}
