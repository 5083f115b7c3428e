"""The shadow report for people: plain text for the terminal and an HTML page for the
inbox. Both say what was compared (directories, versions, rule differences), how much
was replayed, and every change with its rules, words and examples; zero changes is said
in one plain sentence, never left to be inferred from an empty table."""

from __future__ import annotations

from html import escape

from fte_core.shadow import ChangeGroup, Example, RuleDiff, ShadowReport, StageCounts, Verdict

_KIND = {
    "newly_escalated": "newly escalated",
    "newly_blocked": "newly blocked",
    "newly_allowed": "newly allowed",
    "reasons_changed": "reasons changed",
    "other": "priority, tags or rules changed",
}


def _when(report: ShadowReport) -> str:
    days = (report.until - report.since).total_seconds() / 86_400
    fmt = "%Y-%m-%d %H:%M UTC"
    return f"{report.since.strftime(fmt)} .. {report.until.strftime(fmt)} ({days:.1f} days)"


def _diff(diff: RuleDiff, identical: bool) -> str:
    if identical:
        return "identical files (same version)"
    named = (("added", diff.added), ("removed", diff.removed), ("changed", diff.changed))
    parts = [f"{label}: {', '.join(ids)}" for label, ids in named if ids]
    return "; ".join(parts) or "same rules, files differ (order, comments or layout)"


def _verdict(v: Verdict) -> str:
    text = v.action
    if v.reasons:
        text += f" [{', '.join(v.reasons)}]"
    if v.rule_ids:
        text += f" rules {', '.join(v.rule_ids)}"
    if v.priority:
        text += f" priority {v.priority}"
    if v.tags:
        text += f" tags {', '.join(v.tags)}"
    return text


def verdict_line(label: str, counts: StageCounts, noun: str, stopped: str) -> str:
    return (
        f"  {label}: {counts.replayed} {noun} replayed, {counts.changed} decided differently; "
        f"{stopped} {counts.active_stopped} (active) -> {counts.proposed_stopped} (proposed); "
        f"policy errors {counts.active_errors} / {counts.proposed_errors}"
    )


def summary(report: ShadowReport) -> str:
    if report.zero_changes:
        return (
            f"NO CHANGES: the proposed rules decide all {report.input.replayed} customer "
            f"messages and {report.output.replayed} drafts exactly as the active rules do."
        )
    n = report.input.changed + report.output.changed
    return f"{n} CHANGES: {report.input.changed} messages and {report.output.changed} drafts."


def _group_title(g: ChangeGroup) -> str:
    reason = f", reason {g.reason}" if g.reason else ""
    rules = ", ".join(g.rule_ids) or "-"
    return f"[{g.stage}] {_KIND[g.kind]}{reason}, rules {rules}: {g.count}"


def _example_lines(e: Example) -> list[str]:
    return [
        f"    {e.ticket_number} {e.channel} {e.created_at:%Y-%m-%d %H:%M} message {e.message_id}",
        f'      "{e.excerpt}"',
        f"      active:   {_verdict(e.active)}",
        f"      proposed: {_verdict(e.proposed)}",
        *(f"      {line}" for line in e.evidence),
    ]


def render_text(report: ShadowReport) -> str:
    a, p = report.active, report.proposed
    lines = [
        "Shadow evaluation of a rule change",
        f"  period:   {_when(report)}",
        f"  active:   {a.directory} version {a.version} ({a.rules} rules; "
        f"{a.input_active} input, {a.output_active} output active)",
        f"  proposed: {p.directory} version {p.version} ({p.rules} rules; "
        f"{p.input_active} input, {p.output_active} output active)",
        f"  rules:    {_diff(report.rule_diff, report.identical_sets)}",
        "  decided at the time by: "
        + (", ".join(f"{v} ({n})" for v, n in report.recorded_versions.items()) or "nothing"),
        verdict_line("input stage ", report.input, "customer messages", "escalated"),
        verdict_line("output stage", report.output, "drafts", "blocked"),
        "",
        summary(report),
    ]
    for g in report.changes:
        lines.append(_group_title(g))
        for e in g.examples:
            lines.extend(_example_lines(e))
    if report.teams:
        lines.append("Rule-driven hand-overs per team, active -> proposed:")
        for t in report.teams:
            pct = f", {t.change_percent:+.1f} %" if t.change_percent is not None else ""
            lines.append(
                f"  {t.team:<10} {t.active} -> {t.proposed} ({t.change:+d}{pct}, "
                f"{t.change_per_day:+.2f} per day)"
            )
    lines.extend(f"Note: {n}" for n in report.notes)
    return "\n".join(lines)


def _cell(text: object) -> str:
    return f"<td>{escape(str(text))}</td>"


def _html_group(g: ChangeGroup) -> str:
    rows = "".join(
        "<tr>"
        + _cell(f"{e.ticket_number} ({e.channel})")
        + _cell(e.excerpt)
        + _cell(_verdict(e.active))
        + _cell(_verdict(e.proposed))
        + "<td>"
        + "<br>".join(escape(line) for line in e.evidence)
        + "</td></tr>"
        for e in g.examples
    )
    head = "<tr><th>ticket</th><th>message</th><th>active</th><th>proposed</th><th>why</th></tr>"
    return f"<h3>{escape(_group_title(g))}</h3><table>{head}{rows}</table>"


def render_html(report: ShadowReport) -> str:
    a, p = report.active, report.proposed
    facts = [
        ("period", _when(report)),
        ("active", f"{a.directory} version {a.version} ({a.rules} rules)"),
        ("proposed", f"{p.directory} version {p.version} ({p.rules} rules)"),
        ("rules", _diff(report.rule_diff, report.identical_sets)),
        ("input stage", verdict_line("", report.input, "messages", "escalated").strip(": ")),
        ("output stage", verdict_line("", report.output, "drafts", "blocked").strip(": ")),
    ]
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    teams = "".join(
        f"<tr>{_cell(t.team)}{_cell(t.active)}{_cell(t.proposed)}{_cell(f'{t.change:+d}')}"
        f"{_cell(f'{t.change_per_day:+.2f}')}</tr>"
        for t in report.teams
    )
    team_table = (
        "<h3>Rule-driven hand-overs per team</h3><table><tr><th>team</th><th>active</th>"
        f"<th>proposed</th><th>change</th><th>per day</th></tr>{teams}</table>"
        if report.teams
        else ""
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in report.notes)
    return (
        '<section class="shadow-report"><h2>Shadow evaluation of a rule change</h2>'
        f"<dl>{dl}</dl><p><strong>{escape(summary(report))}</strong></p>"
        + "".join(_html_group(g) for g in report.changes)
        + f"{team_table}<ul>{notes}</ul></section>"
    )
