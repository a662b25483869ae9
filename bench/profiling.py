"""Where a profiled game-service process spent its time, from py-spy's collapsed stacks.

Pure: reads ``frame;frame;... count`` lines (py-spy ``--format raw``) and ranks functions by
inclusive and self samples, so a missed target comes with the code that caused it. Sampling
itself is started by ``targets`` when ``--py-spy`` is given; nothing here runs a process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def _function(frame: str) -> str:
    # py-spy frames read "name (path/to/file.py:123)"; the line number splits one function.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:]) if path else ""
    return f"{name} ({short})" if short else name


def rank(
    lines: Iterable[str], top: int = 25
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """Return (total samples, top functions by inclusive samples, top by self samples)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        for fn in set(frames):
            inclusive[fn] += count
        own[frames[-1]] += count
    return total, inclusive.most_common(top), own.most_common(top)


def render(lines: Iterable[str], top: int = 25) -> str:
    """Return a plain-text report of the hottest functions."""
    total, inclusive, own = rank(lines, top)
    if not total:
        return "no samples\n"
    out = [f"{total} samples", "", "inclusive (share of samples with the function on the stack):"]
    out += [f"  {100 * n / total:5.1f}%  {fn}" for fn, n in inclusive]
    out += ["", "self (share of samples with the function on top):"]
    out += [f"  {100 * n / total:5.1f}%  {fn}" for fn, n in own]
    return "\n".join(out) + "\n"
