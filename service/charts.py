"""Small inline SVG charts for the operators' reports: static markup, no JavaScript, a
title and a text alternative on each, so they render in the inbox, in a mail client and in
a screen reader alike."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#2f6fb0", "#d9822b", "#3a9a5b", "#8a5cb8")
WIDTH = 360
ROW = 18


def _svg(title: str, height: int, body: str, width: int = WIDTH) -> str:
    label = escape(title)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{label}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{label}</title>{body}</svg>"
    )


def _text(x: float, y: float, value: str, anchor: str = "start", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'font-family="sans-serif" fill="#222">{escape(value)}</text>'
    )


def bars(title: str, rows: Sequence[tuple[str, float]], unit: str = "") -> str:
    """Horizontal bars, one per (label, value), scaled to the largest value."""
    if not rows:
        return _svg(title, ROW + 6, _text(4, ROW, "no data"))
    top = max(v for _, v in rows) or 1.0
    label_w, bar_w = 130, WIDTH - 130 - 60
    parts = []
    for i, (label, value) in enumerate(rows):
        y = 4 + i * ROW
        w = max(1.0, bar_w * value / top) if value else 0.0
        parts.append(_text(label_w - 6, y + 12, label[:22], "end"))
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{ROW - 6}" '
            f'fill="{PALETTE[0]}"/>'
        )
        parts.append(_text(label_w + w + 4, y + 12, f"{value:g}{unit}"))
    return _svg(title, 8 + len(rows) * ROW, "".join(parts))


def grouped_bars(
    title: str, groups: Sequence[str], series: Sequence[tuple[str, Sequence[float]]]
) -> str:
    """Vertical bars: one group per label, one bar per series, with a legend."""
    height, base, left = 170, 130, 30
    values = [v for _, vs in series for v in vs]
    top = max(values, default=0.0) or 1.0
    group_w = (WIDTH - left) / max(1, len(groups))
    bar_w = (group_w - 12) / max(1, len(series))
    parts = [f'<line x1="{left}" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#999"/>']
    for g, group in enumerate(groups):
        x0 = left + g * group_w + 6
        for s, (_, vs) in enumerate(series):
            value = vs[g]
            h = (base - 20) * value / top
            x = x0 + s * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}"/>'
            )
            parts.append(_text(x + bar_w / 2, base - h - 3, f"{value:g}", "middle", 10))
        parts.append(_text(x0 + group_w / 2 - 6, base + 14, group, "middle"))
    parts += _legend([name for name, _ in series], base + 32, left)
    return _svg(title, height, "".join(parts))


def _legend(names: Sequence[str], y: float, left: float) -> list[str]:
    parts = []
    for s, name in enumerate(names):
        x = left + s * 110
        colour = PALETTE[s % len(PALETTE)]
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, y, name))
    return parts


def lines(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    low: float = 0.0,
    high: float = 1.0,
) -> str:
    """One polyline per series over `labels` on a fixed [low, high] scale; gaps where a
    value is missing."""
    height, base, top_y, left = 170, 130, 12, 30
    step = (WIDTH - left - 10) / max(1, len(labels) - 1)

    def y_of(v: float) -> float:
        return base - (base - top_y) * (v - low) / ((high - low) or 1.0)

    parts = [
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}" stroke="#999"/>',
        _text(left - 4, y_of(high) + 4, f"{high:g}", "end", 10),
        _text(left - 4, y_of(low) + 4, f"{low:g}", "end", 10),
    ]
    for i, label in enumerate(labels):
        parts.append(_text(left + i * step, base + 14, label, "middle", 10))
    for s, (_, values) in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        points = [(left + i * step, y_of(v)) for i, v in enumerate(values) if v is not None]
        if len(points) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in points]
    parts += _legend([name for name, _ in series], base + 32, left)
    return _svg(title, height, "".join(parts))
