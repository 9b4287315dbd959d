"""``rollout status --html FILE``: the fleet's rollout rows as one self-contained HTML5 page.

:func:`render_page` takes :meth:`repo_tool.audit.rollout_status.FleetStatus.rows` (the ``--json`` list)
and gives a summary (counts by state, the failures), then one table row per variant/arch/update
(``<tr data-variant data-arch data-version data-state data-fraction>``): its state as a badge
(paused, halted, pulled and failed each in their own colour), the share of the 2048 seeds offered
as a bar, the current and next wave, when the last seed is offered, ``max_version``, the earliest
metadata expiry (flagged inside the window or past it) and a timeline of its waves on an axis
shared by every row, with a "now" marker at ``at``.

Must not: read files, the network or the clock (``at`` is passed in); fetch anything from the page
(inline CSS and inline SVG only, no script, and a Content-Security-Policy that forbids any load);
put any string from the rows into the page unescaped; judge a rollout (the rows say where it stands).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from repo_tool.audit.rollout_status import FAILED, NO_UPDATE
from repo_tool.audit.status_table import all_offered_text, minute, next_wave_text, percent, wave_text
from repo_tool.core.instant import NANOS_PER_DAY, format_duration, format_instant, parse_instant
from repo_tool.core.readiness import SEED_COUNT
from repo_tool.core.standing import STATES as STANDING_STATES
from repo_tool.errors import InstantError

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STATES = (*STANDING_STATES, NO_UPDATE, FAILED)
ALERT_STATES = frozenset({"paused", "halted", "pulled", FAILED})
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WIDTH, HEIGHT, AXIS_HEIGHT = 300, 22, 30  # timeline SVG user units (one unit a CSS pixel)

_CSS = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:110rem;padding:0 1rem;
color:var(--ink);line-height:1.35;font-size:15px}h1{font-size:1.45rem;margin:0 0 .3rem}
h2{font-size:1.1rem;margin:1.2rem 0 .4rem}.note{color:var(--muted);font-size:.85rem;margin:.2rem 0}
table{border-collapse:collapse;width:100%;font-size:.875rem}
th,td{border-bottom:1px solid var(--line);padding:.4rem .5rem;text-align:left;vertical-align:middle}
thead th{background:var(--head);position:sticky;top:0;font-weight:600;vertical-align:bottom}
thead th:last-child{padding:0 .5rem}tbody tr:hover{background:#f6f8fa}
tr.alert td:first-child{box-shadow:inset 4px 0 0 var(--edge)}tr.more td{border-top:0;padding-top:0}
tr.e-paused{--edge:#d4a72c}tr.e-halted{--edge:#e16f24}tr.e-pulled{--edge:#8250df}tr.e-failed{--edge:#cf222e}
.nw{white-space:nowrap}code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.82rem}
.repo b{display:block}.sub{color:var(--muted);font-size:.8rem}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-weight:600;font-size:.8rem;
border:1px solid currentColor;white-space:nowrap}.s-rolling{color:#0a3069;background:#ddf4ff}
.s-complete{color:#116329;background:#dafbe1}.s-scheduled{color:#3d4a5c;background:#eef1f4}
.s-none{color:#59636e;background:#f6f8fa}.s-paused{color:#6c4400;background:#fff4c2}
.s-halted{color:#8a3100;background:#ffe2cc}.s-pulled{color:#5a32a3;background:#f3e8ff}
.s-failed{color:#a40e26;background:#ffebe9}.x-soon{color:#6c4400;background:#fff4c2}
.x-expired{color:#fff;background:#a40e26;border-color:#a40e26}
.bar{width:7rem;height:.7rem;background:#eef1f4;border:1px solid #afb8c1;border-radius:.2rem;overflow:hidden}
.bar div{height:100%;background:#0969da}.pct{display:block;font-weight:600;font-variant-numeric:tabular-nums}
.error{color:#a40e26;font-weight:500;overflow-wrap:anywhere}
.summary{display:flex;flex-wrap:wrap;gap:.4rem;margin:.6rem 0;padding:0;list-style:none}
.summary li{border:1px solid var(--line);border-radius:.4rem;padding:.25rem .6rem;background:#fff}
.summary b{font-size:1.05rem;margin-right:.25rem}ul.failures{margin:.2rem 0 .8rem;padding-left:1.2rem}
svg{display:block;overflow:visible}.axis text{font-size:10px;fill:#59636e}.tl{min-width:220px;width:300px}
.tl svg,svg.axis{width:100%;height:auto}.legend svg{display:inline-block;vertical-align:middle}
@media print{body{margin:0;max-width:none;font-size:10pt}thead th{position:static}tbody tr:hover{background:none}
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}tr{break-inside:avoid}}
"""

_DEFS = ('<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs><pattern id="hatch" width="6" '
         'height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" '
         'fill="#eef1f4"/><rect width="2.5" height="6" fill="#8c959f"/></pattern></defs></svg>')


def _h(value: object) -> str:
    return html.escape("—" if value is None or value == "" else str(value), quote=True)


def _attr(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _instant(value: object) -> int | None:
    """An RFC 3339 string of the rows as nanoseconds (None: absent or unreadable)."""
    try:
        return parse_instant(value) if isinstance(value, str) else None
    except InstantError:
        return None


def _fraction(row: Mapping[str, Any]) -> float:
    value = row.get("fleet_fraction")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _waves(row: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    waves = row.get("waves")
    return [w for w in waves if isinstance(w, Mapping)] if isinstance(waves, list) else []


def _day(instant: int) -> str:
    text = format_instant(instant)
    return f"{MONTHS[int(text[5:7]) - 1]} {int(text[8:10])}"


class Axis:
    """The time axis every row's timeline shares: the earliest wave start to the latest time a
    wave is offered by, padded, always including ``at``."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], at: int) -> None:
        times = [at]
        for row in rows:
            for wave in _waves(row):
                found = (_instant(wave.get("starts_at")), _instant(wave.get("offered_by")))
                times += [t for t in found if t is not None]
        low, high = min(times), max(times)
        pad = max((high - low) // 20, NANOS_PER_DAY // 4)
        self.low, self.high, self.at = low - pad, high + pad, at

    def x(self, instant: int) -> float:
        return round((instant - self.low) / (self.high - self.low) * WIDTH, 1)

    def ticks(self) -> list[int]:
        """Midnights (UTC) on the axis, thinned to at most 7."""
        first = (self.low // NANOS_PER_DAY + 1) * NANOS_PER_DAY
        days = list(range(first, self.high, NANOS_PER_DAY))
        step = max(1, -(-len(days) // 7))
        return days[::step]

    def header(self) -> str:
        now = self.x(self.at)
        out = [f'<svg class="axis" viewBox="0 0 {WIDTH} {AXIS_HEIGHT}" role="img" '
               f'aria-label="time axis from {_h(format_instant(self.low))} to {_h(format_instant(self.high))}">']
        for tick in self.ticks():
            x = self.x(tick)
            out.append(f'<line x1="{x}" x2="{x}" y1="{AXIS_HEIGHT - 6}" y2="{AXIS_HEIGHT}" stroke="#8c959f"/>'
                       f'<text x="{x}" y="{AXIS_HEIGHT - 9}" text-anchor="middle">{_day(tick)}</text>')
        out.append(f'<g class="now"><title>now: {_h(format_instant(self.at))}</title>'
                   f'<line x1="{now}" x2="{now}" y1="0" y2="{AXIS_HEIGHT}" stroke="#cf222e" stroke-width="2"/>'
                   f'<text x="{now + 3}" y="9" fill="#cf222e" style="fill:#cf222e;font-weight:700">now</text></g>')
        return "".join(out) + "</svg>"

    def timeline(self, row: Mapping[str, Any]) -> str:
        """One row's waves: a rect per timed wave (offered in full by ``at``: dark; under way: mid;
        to come: light; held: hatched), the initial wave a marker at the left edge."""
        pulled = row.get("state") == "pulled"
        parts = []
        for wave in _waves(row):
            seeds = wave.get("seeds")
            first, last = (seeds[0], seeds[-1]) if isinstance(seeds, list) and seeds else (None, None)
            start, end = _instant(wave.get("starts_at")), _instant(wave.get("offered_by"))
            name = f"wave {_h(wave.get('wave'))} ({_h(wave.get('kind'))}): seeds {_h(first)}–{_h(last)}"
            if wave.get("kind") in ("initial", "none"):
                parts.append(f'<path class="initial" d="M1 4 L7 11 L1 18 Z" fill="#57606a"><title>{name}, '
                             f'offered when published</title></path>')
            elif wave.get("held"):
                x0 = self.x(start) if start is not None else self.x(self.at)
                parts.append(f'<rect class="held" x="{x0}" y="4" width="{max(WIDTH - x0, 3)}" height="14" '
                             f'fill="url(#hatch)" stroke="#6e7781"><title>{name}: held (paused or halted); '
                             f'starts {_h(wave.get("starts_at") or "held")}</title></rect>')
            elif start is not None:
                end = start if end is None else end
                fill = "#afb8c1" if pulled else "#0550ae" if end <= self.at else "#54aeff" if start <= self.at \
                    else "#b6e3ff"
                x0 = self.x(start)
                parts.append(f'<rect class="wave" x="{x0}" y="4" width="{max(self.x(end) - x0, 2)}" height="14" '
                             f'fill="{fill}" stroke="#fff" stroke-width=".5"><title>{name}: starts '
                             f'{_h(wave.get("starts_at"))}, all offered by {_h(wave.get("offered_by"))}</title></rect>')
        now = self.x(self.at)
        parts.append(f'<line class="now" x1="{now}" x2="{now}" y1="0" y2="{HEIGHT}" stroke="#cf222e" stroke-width="2">'
                     f'<title>now: {_h(format_instant(self.at))}</title></line>')
        label = f"waves of {_h(row.get('variant'))} {_h(row.get('arch'))} {_h(row.get('version'))}"
        return f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">{"".join(parts)}</svg>'


def _badge(state: str) -> str:
    return f'<span class="badge s-{_h(state)}">{_h(state)}</span>'


def _shown(row: Mapping[str, Any], field: str, text: Callable[[Mapping[str, Any]], str]) -> str:
    """A time column as the table words it (``text``), the instant in a ``<time>`` where it is one."""
    words = text(row)
    return _when(row[field]) if row.get(field) and words == minute(row[field]) else _h(words)


def _when(value: object) -> str:
    """An instant of the rows to the minute as the table shows it (``2026-12-03 00:00Z``), exact in
    ``datetime`` and the tooltip."""
    if not isinstance(value, str) or "T" not in value:
        return _h(value)
    date, _, time = minute(value).partition(" ")
    return (f'<time datetime="{_attr(value)}" title="{_attr(value)}"><span class="nw">{_h(date)}</span> '
            f'<span class="nw">{_h(time)}Z</span></time>')


def _expiry(row: Mapping[str, Any]) -> str:
    if row.get("expires_at") is None:
        return "—"
    status, flag = row.get("expiry"), {"soon": "expires soon", "expired": "expired"}.get(str(row.get("expiry")))
    badge = f'<div><span class="badge x-{_h(status)}">{flag}</span></div>' if flag else ""
    return f'{_when(row.get("expires_at"))}<div class="sub">{_h(row.get("expires_file"))}</div>{badge}'


def _state_cell(row: Mapping[str, Any]) -> str:
    since = row.get("paused_since") if row.get("state") == "paused" else None
    return _badge(str(row.get("state"))) + (f'<div class="sub">since {_when(since)}</div>' if since else "")


def _offered(row: Mapping[str, Any]) -> str:
    fraction = _fraction(row)
    return (f'<div class="bar" role="presentation"><div style="width:{min(max(fraction * 100, 0), 100):.2f}%">'
            f'</div></div><span class="pct">{_h(percent(fraction))}</span> <span class="sub nw">'
            f'{_h(row.get("seeds_offered"))} of {_h(row.get("seed_count", SEED_COUNT))} seeds</span>')


def _label(row: Mapping[str, Any]) -> str:
    return _h(row.get("repo") or row.get("metadata_url"))


def _row(row: Mapping[str, Any], axis: Axis) -> str:
    state = str(row.get("state"))
    edge = "failed" if row.get("error") else state  # a repository nodes refuse is marked as failed
    classes = f"e-{_h(edge)}" + (" alert" if edge in ALERT_STATES else "")
    attrs = " ".join(f'data-{name}="{_attr(row.get(name))}"' for name in ("repo", "variant", "arch", "version"))
    cells = [f'<td class="repo"><b>{_label(row)}</b><span class="sub"><span class="nw">{_h(row.get("variant"))}'
             f'</span> / <span class="nw">{_h(row.get("arch"))}</span></span></td>',
             f'<td class="mono">{_h(row.get("version"))}</td>', f"<td>{_state_cell(row)}</td>"]
    error = row.get("error")
    if state in (FAILED, NO_UPDATE):
        text = _h(error) if state == FAILED else "no update listed for this variant/arch"
        cells += [f'<td colspan="5" class="{"error" if state == FAILED else "sub"}">{text}</td>',
                  f"<td>{_expiry(row)}</td>", "<td></td>"]
        error = None
    else:
        cells += [f"<td>{_offered(row)}</td>", f'<td class="nw">{_h(wave_text(row))}</td>',
                  f"<td>{_shown(row, 'next_wave_at', next_wave_text)}</td>",
                  f"<td>{_shown(row, 'complete_at', all_offered_text)}</td>",
                  f'<td class="mono">{_h(row.get("max_version"))}</td>', f"<td>{_expiry(row)}</td>",
                  f'<td class="tl">{axis.timeline(row)}</td>']
    out = (f'<tr class="{classes}" {attrs} data-state="{_attr(state)}" data-fraction="{_fraction(row)!r}">'
           + "".join(cells) + "</tr>")
    if error:  # a repository that loaded but nodes refuse (expired): said under its row
        out += f'<tr class="more {classes}"><td></td><td colspan="9" class="error">{_h(error)}</td></tr>'
    return out


def _summary(rows: Sequence[Mapping[str, Any]], within: int) -> list[str]:
    counts = Counter(str(row.get("state")) for row in rows)
    order = [s for s in STATES if counts[s]] + sorted(s for s in counts if s not in STATES)
    items = "".join(f'<li><b>{counts[s]}</b>{_badge(s)}</li>' for s in order) or "<li>nothing to show</li>"
    expiring = Counter(str(row.get("expiry")) for row in rows)
    out = ["<h2>Summary</h2>", f'<ul class="summary">{items}</ul>',
           f'<p class="note">{len(rows)} row(s); expiries inside {_h(format_duration(within))} are flagged '
           f'({expiring["soon"]} soon, {expiring["expired"]} expired).</p>']
    failures = dict.fromkeys((_label(row), _h(row.get("variant")), _h(row.get("arch")), _h(row.get("error")))
                             for row in rows if row.get("error"))
    if failures:
        out += [f"<h2>Failures ({len(failures)})</h2>", '<ul class="failures">']
        out += [f'<li><b>{repo}</b> {variant}/{arch}: <span class="error">{error}</span></li>'
                for repo, variant, arch, error in failures]
        out.append("</ul>")
    return out


def _legend() -> str:
    fills = (("#0550ae", "offered in full"), ("#54aeff", "under way"), ("#b6e3ff", "to come"),
             ("url(#hatch)", "held (paused or halted)"), ("#afb8c1", "pulled"))
    swatches = [(f'<rect width="18" height="12" fill="{fill}" stroke="#6e7781" stroke-width=".5"/>', text)
                for fill, text in fills]
    swatches += [('<path d="M1 0 L7 6 L1 12 Z" fill="#57606a"/>', "initial wave (offered when published)"),
                 ('<line x1="3" x2="3" y1="0" y2="12" stroke="#cf222e" stroke-width="2"/>', "now")]
    return ('<p class="note legend">Timeline: ' + " · ".join(
        f'<svg width="18" height="12" aria-hidden="true">{shape}</svg> {text}' for shape, text in swatches) + "</p>")


def render_page(rows: list[dict[str, Any]], at: int, within: int, refresh_seconds: int | None = None) -> str:
    """The page for ``rows`` at ``at`` (ns), flagging expiries inside ``within`` (ns); with
    ``refresh_seconds``, the browser reloads it that often (``--watch`` rewrites the file)."""
    when = _h(format_instant(at))
    axis = Axis(rows, at)
    head = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">']
    if refresh_seconds is not None:
        head.append(f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">')
    head += [f"<title>Rollout status at {when}</title>", f"<style>{_CSS}</style>", "</head>"]
    header = ["Repository", "Version", "State", "Offered", "Wave", "Next wave", "All offered by", "Max version",
              "Earliest expiry", axis.header()]
    body = ["<body>", _DEFS, f"<h1>Rollout status at {when}</h1>",
            '<p class="note">Seeds offered are counted with updog\'s readiness rules, seed by seed, of 2048.'
            + (f" This page reloads every {int(refresh_seconds)} s." if refresh_seconds is not None else "") + "</p>"]
    body += _summary(rows, within)
    body += ["<h2>Updates</h2>", _legend(), "<table>", "<thead><tr>"
             + "".join(f'<th scope="col">{h}</th>' for h in header) + "</tr></thead>", "<tbody>"]
    body += [_row(row, axis) for row in rows] or ['<tr><td colspan="10">No repositories.</td></tr>']
    body += ["</tbody>", "</table>", "</body>", "</html>"]
    return "\n".join(head + body) + "\n"
