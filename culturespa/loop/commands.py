"""Running one command of a stage with the loop's terminal (its progress bars show), what it
cost (wall time, CPU time, peak memory), and the run folder's timings file."""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from culturespa.errors import CulturespaError

MEMORY_LIMIT_MB = 4096
"""The loop's memory budget per process (peak resident set size), checked after every stage."""


def _die_with_parent() -> None:
    """In the child: receive SIGTERM when the loop dies (Linux), so that a killed loop leaves no
    stage running on its own and a rerun never races it."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Usage:
    """What one or more commands of a stage cost."""

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0

    def add(self, other: Usage) -> None:
        self.seconds += other.seconds
        self.cpu_seconds += other.cpu_seconds
        self.peak_rss_mb = max(self.peak_rss_mb, other.peak_rss_mb)


def child_env() -> dict[str, str]:
    """The loop's environment for its commands: the same Python finds the same package (an
    installed wheel, or the PYTHONPATH of a checkout); no file of a clone is needed."""
    env = dict(os.environ)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _failed(unit: str, code: int) -> CulturespaError:
    return CulturespaError(
        f"{unit}: the command failed (exit code {code}); fix the cause and run the loop "
        "again to continue"
    )


def run_command(unit: str, argv: list[str], in_process: bool = False) -> Usage:
    """Run a `culturespa_command` with the loop's terminal (its progress bars show): in a child
    process (its own wall time, CPU time and peak memory), or in this process (`in_process`:
    one Python start, the CPU threads set here; the peak memory is this process's). A failing
    command stops the loop."""
    if in_process:
        prefix = culturespa_command()
        if argv[: len(prefix)] != prefix:
            raise CulturespaError(f"{unit}: not a culturespa command: {' '.join(argv)}")
        return _run_here(unit, argv[len(prefix) :])
    print("$ " + " ".join(argv), flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=child_env(), preexec_fn=_die_with_parent)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.terminate()
        proc.wait()
        raise
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise _failed(unit, code)
    return Usage(
        seconds=time.perf_counter() - start,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,  # kilobytes on Linux
    )


def _run_here(unit: str, args: list[str]) -> Usage:
    import resource

    from culturespa.cli.main import main
    from culturespa.survey.folder import survey_folder, use_survey_folder

    print("$ culturespa " + " ".join(args), flush=True)
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    previous = survey_folder()
    use_survey_folder(None)  # each command starts with the shipped survey, as a child process
    try:
        code = main(args)
    finally:
        use_survey_folder(previous)
    if code != 0:
        raise _failed(unit, code)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return Usage(
        seconds=time.perf_counter() - start,
        cpu_seconds=after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
        peak_rss_mb=after.ru_maxrss / 1024,
    )


def culturespa_command(*args: str) -> list[str]:
    """`python -m culturespa.cli.main ARGS` with this Python: the command of an installed package."""
    return [sys.executable, "-m", "culturespa.cli.main", *args]


def _cpu_times(stat: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs since boot, from Linux's /proc/stat; None elsewhere."""
    try:
        with open(stat, encoding="ascii") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 5:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields[:8]) - idle, sum(fields[:8])


def busy_cores(interval: float = 0.5, stat: str = "/proc/stat") -> float | None:
    """Cores in use over the next `interval` seconds (Linux), or None where unknown."""
    before = _cpu_times(stat)
    if before is None:
        return None
    time.sleep(interval)
    after = _cpu_times(stat)
    if after is None or after[1] <= before[1]:
        return None
    cores = os.cpu_count() or 1
    return cores * (after[0] - before[0]) / (after[1] - before[1])


def free_cores() -> int:
    """CPU cores not busy right now, at least 1.

    Measured over half a second from /proc/stat where there is one: the 1-minute load average
    still counts work that has just ended (the pip install before `make demo`), and picked one
    thread on an idle 2-core machine. Elsewhere, the load average. A core counts as free unless
    more than 70% of it is in use.
    """
    cores = os.cpu_count() or 1
    busy = busy_cores()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            return cores
    # A core counts as taken when more than 70% of it is in use: a short job that ran during
    # the measurement (a shell command, the end of an install) leaves the demo both threads.
    return max(1, min(cores, cores - math.floor(busy + 0.3)))


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def load_average() -> float:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return float("nan")


class Timings:
    """Per unit of work (a stage, or one country's adapter or evaluation): seconds, CPU seconds
    and peak memory, summed over the runs that worked on it (a resumed stage adds up)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: dict[str, dict] = json.loads(path.read_text()) if path.is_file() else {}

    def add(self, unit: str, usage: Usage) -> None:
        from culturespa.atomic import write_json_atomic

        old = self.records.get(unit, {})
        self.records[unit] = {
            "seconds": round(old.get("seconds", 0.0) + usage.seconds, 1),
            "cpu_seconds": round(old.get("cpu_seconds", 0.0) + usage.cpu_seconds, 1),
            "peak_rss_mb": round(max(old.get("peak_rss_mb", 0.0), usage.peak_rss_mb), 1),
            "runs": old.get("runs", 0) + 1,
            "load_average": load_average(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        write_json_atomic(self.path, self.records)
        if usage.peak_rss_mb > MEMORY_LIMIT_MB:
            print(
                f"WARNING: {unit} peaked at {usage.peak_rss_mb:.0f} MB, over {MEMORY_LIMIT_MB} MB"
            )
