"""A :class:`~recentd.report.model.ReportData` as one self-contained HTML file.

Rules: the plots are matplotlib figures saved as SVG and put inline (text drawn as
paths, so no font or network is needed to show them; ``svg.hashsalt`` fixed, so the
same data gives the same file); each plot is a ``<figure data-plot="NAME">`` so a test
or a reader finds it; every text from the data is escaped. The file is written whole
and renamed into place.
"""

from __future__ import annotations

import datetime
import html
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from recentd.report.model import ReportData, Timeline

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.subject { color: #555; margin-top: 0; }
figure { margin: 0; } figure svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6em; overflow-x: auto; }
"""


def _when(ns: int | None) -> str:
    if ns is None:
        return "still"
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "path", "svg.hashsalt": "recentd"}):
        figure.savefig(out, format="svg", bbox_inches="tight")
    text = out.getvalue()
    return text[text.index("<svg"):]


def timeline_svg(timeline: Timeline) -> str:
    """Attempts, drops and bans per step for the top sources, one panel each."""
    figure = Figure(figsize=(10, 6.5))
    axes = figure.subplots(3, 1, sharex=True)
    times = [datetime.datetime.fromtimestamp(timeline.start_ns / 1e9 + i * timeline.step_s,
                                             tz=datetime.UTC)
             for i in range(len(timeline.sources[0].attempts) if timeline.sources else 0)]
    for row in timeline.sources:
        axes[0].plot(times, row.attempts, label=row.source, drawstyle="steps-post")
        axes[1].plot(times, row.drops, label=row.source, drawstyle="steps-post")
        axes[2].step(times, _cumulative(row.bans), label=row.source, where="post")
    for ax, label in zip(axes, ("attempts", "dropped", "bans (total)"), strict=True):
        ax.set_ylabel(label)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_title(f"top {len(timeline.sources)} sources, per {timeline.step_s:g} s (UTC)")
    if timeline.sources:
        axes[0].legend(fontsize=8, loc="upper right")
    figure.autofmt_xdate()
    return _svg(figure)


def _cumulative(values: Sequence[int]) -> list[int]:
    total, out = 0, []
    for value in values:
        total += value
        out.append(total)
    return out


def distribution_svg(attempts: Sequence[int]) -> str:
    """How many sources made how many attempts (log-spaced bins)."""
    figure = Figure(figsize=(10, 3.2))
    ax = figure.subplots()
    if attempts:
        top = max(attempts)
        edges = [1.0]
        while edges[-1] <= top:
            edges.append(edges[-1] * 2)
        ax.hist(attempts, bins=edges, color="#4c72b0", edgecolor="white")
        ax.set_xscale("log", base=2)
    ax.set_xlabel("attempts per source")
    ax.set_ylabel("sources")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"{len(attempts)} sources")
    ax.grid(alpha=0.3)
    return _svg(figure)


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], numeric: set[int]) -> str:
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = []
    for row in rows:
        body.append("<tr>" + "".join(
            f'<td class="n">{html.escape(str(v))}</td>' if i in numeric
            else f"<td>{html.escape(str(v))}</td>" for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def render(data: ReportData) -> str:
    """The page's text."""
    rules = _table(("where", "rule", "packets", "bytes"),
                   ((r.where, r.rule, r.packets, r.bytes) for r in data.rules), {2, 3})
    bans = _table(("who", "when", "until", "why"),
                  ((b.who, _when(b.when_ns), _when(b.until_ns), b.why) for b in data.bans),
                  set())  # fmt: skip
    notes = f"<pre>{html.escape(chr(10).join(data.notes))}</pre>" if data.notes else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(data.title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(data.title)}</h1>
<p class="subject">{html.escape(data.subject)}</p>
{notes}
<h2>Timeline: attempts, drops and bans of the top sources</h2>
<figure data-plot="timeline">{timeline_svg(data.timeline)}</figure>
<h2>Attempts per source</h2>
<figure data-plot="distribution">{distribution_svg(data.attempts_per_source)}</figure>
<h2>Rule counters</h2>
{rules}
<h2>Bans ({len(data.bans)})</h2>
{bans}
</body></html>
"""


def write_report(path: Path, data: ReportData) -> None:
    """Write ``data`` as one self-contained HTML file at ``path`` (atomically).

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(render(data), encoding="utf-8")
    temporary.replace(path)
