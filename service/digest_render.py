"""The digest as text (the terminal, the operators' email) and as an HTML page with inline
SVG charts (the inbox); the JSON form is `service.digest.encode`."""

from __future__ import annotations

from html import escape

from fte_core import resolution
from fte_core.ports import QueueFigures
from fte_core.resolution import ResolutionFigures
from service import charts
from service.digest import ChannelDigest, Count, Digest


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _counts(items: tuple[Count, ...]) -> str:
    return ", ".join(f"{c.name} ({c.conversations})" for c in items) or "none"


_NONE = resolution.figures(())


def _res(c: ChannelDigest) -> ResolutionFigures:
    return c.traffic.resolution or _NONE


def _resolution_line(r: ResolutionFigures) -> str:
    return (
        f"resolution: naive {_pct(r.naive_rate)}, honest {_pct(r.honest_rate)} "
        f"({r.confirmed} confirmed, {r.quiet} quiet, {r.recontacted} re-contacted, "
        f"{r.handed_over} handed over, {r.pending} pending)"
    )


def _queue_line(q: QueueFigures) -> str:
    queued = (
        "unknown"
        if q.queued_by_topic is None
        else ", ".join(f"{t} {n}" for t, n in sorted(q.queued_by_topic.items())) or "empty"
    )
    dead = "unknown" if q.dead_letters is None else f"{q.dead_letters} today"
    total = "" if q.dead_letters_total is None else f", {q.dead_letters_total} in all"
    return f"queue: {queued}; dead letters: {dead}{total}"


def _channel_text(c: ChannelDigest) -> list[str]:
    t = c.traffic
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(t.escalations_by_reason.items()))
    return [
        f"{c.channel.value}:",
        f"  messages in {t.messages_in}, out {t.messages_out}, conversations {t.conversations}",
        f"  answered {c.answered}, handed over {c.handed_over} "
        f"(escalation rate {_pct(t.escalation_rate)}; {reasons or 'no escalations'})",
        f"  top tags: {_counts(c.top_tags)}",
        f"  top knowledge-base sections: {_counts(c.top_sections)}",
        f"  sentiment: average {_num(t.average_sentiment)}, change {_num(c.sentiment_change)}",
        f"  reply latency: p50 {_num(t.reply_latency_ms_p50, 1)} ms, "
        f"p95 {_num(t.reply_latency_ms_p95, 1)} ms",
        f"  tokens {t.prompt_tokens} in / {t.completion_tokens} out, cost ${t.cost_usd:.4f}",
        f"  {_resolution_line(_res(c))}",
    ]


def text(digest: Digest) -> str:
    lines = [f"{digest.title} (UTC), generated {digest.generated_at:%Y-%m-%d %H:%M} UTC"]
    for channel in digest.channels:
        lines += _channel_text(channel)
    lines.append(_queue_line(digest.queue))
    lines.append(
        f"Honest resolution: an answer counts as resolved when the customer confirms it or "
        f"does not write again on any channel within {digest.resolution_window_hours:g} hours."
    )
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:sans-serif;max-width:60rem;margin:1rem auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;"
    "text-align:right}th:first-child,td:first-child{text-align:left}"
    ".charts{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}"
)


def _row(name: str, values: list[str]) -> str:
    cells = "".join(f"<td>{escape(v)}</td>" for v in values)
    return f"<tr><th scope='row'>{escape(name)}</th>{cells}</tr>"


def _table(digest: Digest) -> str:
    cs = digest.channels
    head = "".join(f"<th scope='col'>{escape(c.channel.value)}</th>" for c in cs)
    rows = [
        _row("messages in", [str(c.traffic.messages_in) for c in cs]),
        _row("messages out", [str(c.traffic.messages_out) for c in cs]),
        _row("conversations", [str(c.traffic.conversations) for c in cs]),
        _row("answered", [str(c.answered) for c in cs]),
        _row("handed over", [str(c.handed_over) for c in cs]),
        _row("escalation rate", [_pct(c.traffic.escalation_rate) for c in cs]),
        _row("average sentiment", [_num(c.traffic.average_sentiment) for c in cs]),
        _row("sentiment change", [_num(c.sentiment_change) for c in cs]),
        _row("latency p50 (ms)", [_num(c.traffic.reply_latency_ms_p50, 1) for c in cs]),
        _row("latency p95 (ms)", [_num(c.traffic.reply_latency_ms_p95, 1) for c in cs]),
        _row(
            "tokens in / out",
            [f"{c.traffic.prompt_tokens} / {c.traffic.completion_tokens}" for c in cs],
        ),
        _row("cost (USD)", [f"{c.traffic.cost_usd:.4f}" for c in cs]),
        _row("naive resolution", [_pct(_res(c).naive_rate) for c in cs]),
        _row("honest resolution", [_pct(_res(c).honest_rate) for c in cs]),
        _row("re-contacted / pending", [f"{_res(c).recontacted} / {_res(c).pending}" for c in cs]),
        _row("top tags", [_counts(c.top_tags) for c in cs]),
        _row("top KB sections", [_counts(c.top_sections) for c in cs]),
    ]
    return f"<table><tr><th scope='col'>figure</th>{head}</tr>{''.join(rows)}</table>"


def _charts(digest: Digest) -> list[str]:
    cs = digest.channels
    names = [c.channel.value for c in cs]
    reasons: dict[str, int] = {}
    for c in cs:
        for reason, n in c.traffic.escalations_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    days = [p.date.strftime("%m-%d") for p in cs[0].sentiment_trend] if cs else []
    return [
        charts.grouped_bars(
            "Messages in and out per channel",
            names,
            [
                ("in", [float(c.traffic.messages_in) for c in cs]),
                ("out", [float(c.traffic.messages_out) for c in cs]),
            ],
        ),
        charts.bars(
            "Escalations by reason",
            sorted(((k, float(v)) for k, v in reasons.items()), key=lambda kv: -kv[1]),
        ),
        charts.lines(
            "Average sentiment per day (0 negative, 1 positive)",
            days,
            [(c.channel.value, [p.average_sentiment for p in c.sentiment_trend]) for c in cs],
        ),
        charts.grouped_bars(
            "Resolution rate per channel, naive and honest (%)",
            names,
            [
                ("naive", [round((_res(c).naive_rate or 0) * 100, 1) for c in cs]),
                ("honest", [round((_res(c).honest_rate or 0) * 100, 1) for c in cs]),
            ],
        ),
    ]


def html(digest: Digest) -> str:
    title = escape(digest.title)
    figures = "".join(f"<figure>{chart}</figure>" for chart in _charts(digest))
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{_STYLE}</style></head><body><main><h1>{title}</h1>"
        f"<p>UTC day {digest.date.isoformat()}, generated "
        f"{digest.generated_at:%Y-%m-%d %H:%M} UTC.</p>"
        f"<div class='charts'>{figures}</div><h2>Per channel</h2>{_table(digest)}"
        f"<p>{escape(_queue_line(digest.queue))}</p>"
        f"<p>Honest resolution counts an answered conversation as resolved only when the "
        f"customer confirms it or does not write again on any channel within "
        f"{digest.resolution_window_hours:g} hours; pending answers are still inside that "
        f"window and left out of the honest rate.</p></main></body></html>"
    )
