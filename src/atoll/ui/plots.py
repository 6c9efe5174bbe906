"""Charts drawn on the server as SVG shapes: job durations and queue depth over time, and the
histograms of a reviewer's preview. Only numbers are computed here; labels reach the page
through the (escaping) templates, and the page needs no script to show them."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime

from atoll.models.job import JobInfo

WIDTH = 480
HEIGHT = 120
#: at most this many bars: a chart of 10,000 jobs shows the latest
MAX_BARS = 120


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass
class Chart:
    title: str
    bars: list[Bar]
    top: str
    width: int = WIDTH
    height: int = HEIGHT


def bars(title: str, points: list[tuple[str, float]], unit: str = "") -> Chart:
    points = points[-MAX_BARS:]
    high = max((v for _, v in points), default=0.0) or 1.0
    step = WIDTH / max(len(points), 1)
    shown = []
    for i, (label, value) in enumerate(points):
        h = (value / high) * (HEIGHT - 4)
        shown.append(
            Bar(
                round(i * step + 1, 2),
                round(HEIGHT - h, 2),
                round(max(step - 2, 1), 2),
                round(h, 2),
                f"{label}: {value:g}{unit}",
            )
        )
    return Chart(title, shown, f"{high:g}{unit}")


def _ts(text: str) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def durations(jobs: list[JobInfo]) -> Chart:
    """How long each ended job ran, oldest first."""
    points = []
    for j in sorted(jobs, key=lambda j: j.dateCreated):
        start, end = _ts(j.dateStarted), _ts(j.dateFinished)
        if start is not None and end is not None:
            points.append((j.jobId[:10], round(max(end - start, 0.0), 2)))
    return bars("Job durations (s)", points, " s")


def queue_depth(jobs: list[JobInfo], buckets: int = 60) -> Chart:
    """How many jobs waited to start, sampled evenly from the first job's creation to the
    last event."""
    spans: list[tuple[float, float | None]] = []
    for j in jobs:
        made = _ts(j.dateCreated)
        if made is not None:
            spans.append((made, _ts(j.dateStarted) or _ts(j.dateFinished)))
    if not spans:
        return bars("Queue depth (jobs waiting)", [])
    created = sorted(c for c, _ in spans)
    started = sorted(s for _, s in spans if s is not None)
    first = created[0]
    last = max(created[-1], started[-1] if started else first)
    step = max((last - first) / buckets, 1e-6)
    points = []
    for k in range(buckets + 1):
        t = first + k * step
        depth = bisect.bisect_right(created, t) - bisect.bisect_right(started, t)
        points.append((datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S"), float(depth)))
    return bars("Queue depth (jobs waiting)", points)


def histogram(column: str, low: float, high: float, counts: list[int]) -> Chart:
    n = len(counts) or 1
    width = (high - low) / n
    points = [
        (f"{low + i * width:g} to {low + (i + 1) * width:g}", float(c))
        for i, c in enumerate(counts)
    ]
    return bars(column, points)
