"""A repository audit report (the auditor's JSON object) as text a person reads or files.

:func:`render_text` gives the terminal lines of an audit (one per finding, then the verdict),
:func:`expirations_text` those of ``check-expirations``;
:func:`render_markdown` writes GitHub-flavoured Markdown, :func:`render_html` one
self-contained HTML5 page (inline CSS, no script, nothing fetched).  Both documents show the
same sections: title (repository and audit instant), summary, keys, roles, expiry
calendar, findings grouped by severity (errors first).  Every string from the
report is escaped for where it lands.  Pure functions: no I/O, no clock; this module must not
judge the repository (the checks did), only show their report.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from repo_tool.audit.findings import held_roles_text
from repo_tool.core.instant import format_instant, format_two_units, parse_instant
from repo_tool.errors import ConfigError, InstantError, mentions

if TYPE_CHECKING:
    from repo_tool.audit.expirations import Report as ExpirationsReport

SEVERITIES = ("error", "warning", "info")
SEVERITY_TITLES = {"error": "Errors", "warning": "Warnings", "info": "Information"}
EXPIRY_STATUS = {"expired": "expired", "soon": "within window", "ok": "ok"}
SHORT_KEYID = 16
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~&#])")  # "|" only in table cells (_md_cell)
_BACKTICKS = re.compile(r"`+")


def expirations_text(report: ExpirationsReport) -> list[str]:
    """The terminal lines of ``check-expirations``: the instant and window, one line per role of each
    repository (``FAILED to load`` for one that did not: its error goes to stderr), the summary."""
    lines = [f"checking at {format_instant(report.at)}; flagging roles that expire within {report.within_text} "
             f"(by {format_instant(report.at + report.within)})"]
    width = max((len(r.ref.label) for r in report.repos), default=0)
    for result in report.repos:
        label = result.ref.label.ljust(width)
        if result.error is not None:
            lines.append(f"{label}  FAILED to load (the error is on stderr)")
            continue
        for role in result.roles:
            lines.append(f"{label}  {role.role:<9}  v{role.version:<10}  expires {format_instant(role.expires):<20}  "
                         f"{_remaining(role.remaining):>18}  {role.status}")
    lines.append(f"summary: {report.summary()}")
    return lines


def _remaining(ns: int) -> str:
    """Time left (or since expiry), rounded down to whole units: ``6d 23h left``, ``45m 10s ago``."""
    text = format_two_units(abs(ns))
    return f"{text} left" if ns > 0 else f"{text} ago"


def render_text(report: Mapping[str, Any]) -> list[str]:
    """The terminal lines of ``audit``: each finding (``SEVERITY CHECK FILE: message``), then the
    verdict with the summary's counts.  ``report`` is :meth:`Report.to_json_obj`'s, as made."""
    summary = report["summary"]
    lines = [f"{finding['severity'].upper():7} {finding['check']:13} {_located(finding)}"
             for finding in report["findings"]]
    lines.append(f"{report['result'].upper()}: {summary['errors']} error(s), {summary['warnings']} warning(s), "
                 f"{summary['infos']} info; roots {summary['root_versions']}; targets checked "
                 f"{summary['targets_checked']} of {summary['targets_listed']} ({summary['bytes_checked']} bytes)")
    return lines


def _located(finding: Mapping[str, str]) -> str:
    """``FILE: message``, or the message alone when it names the file already (said once)."""
    file, message = finding["file"], finding["message"]
    return message if mentions(message, file) else f"{file}: {message}"


# --- reading the report (tolerant: a missing field shows as a dash, never a crash) ----------


def _text(value: object) -> str:
    if value is None or value == "":
        return "—"
    return str(value)


def _items(report: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    value = report.get(name)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _short(keyid: str) -> str:
    return keyid if len(keyid) <= SHORT_KEYID else keyid[:SHORT_KEYID] + "…"


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{count} bytes" if unit == "bytes" else f"{count} bytes ({size:.1f} {unit})"
        size /= 1024
    return f"{count} bytes"  # pragma: no cover


def _role_label(role: Mapping[str, Any], roots: int) -> str:
    name = _text(role.get("role"))
    return f"{name} v{_text(role.get('version'))}" if name == "root" and roots > 1 else name


def _signing(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Role name -> its entry; for ``root`` the newest root of the chain (the last one listed)."""
    result: dict[str, Mapping[str, Any]] = {}
    for role in _items(report, "roles"):
        result[str(role.get("role"))] = role
    return result


def _signed_marks(key: Mapping[str, Any], signing: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(role, "yes" | "no" | "?") for each role the key is authorized for."""
    keyid = str(key.get("keyid", ""))
    marks = []
    for role in _strings(key.get("roles")):
        entry = signing.get(role)
        if entry is None:
            marks.append((role, "?"))
        elif keyid.lower() in [k.lower() for k in _strings(entry.get("signed_by"))]:
            marks.append((role, "yes"))
        else:
            marks.append((role, "no"))
    return marks


def _held(key: Mapping[str, Any]) -> tuple[str, str]:
    """The root versions that held the key (``v1, v2``) and whether the current root still does
    (``current`` or ``retired``); dashes for a report without that history."""
    versions = key.get("root_versions")
    held = ", ".join(f"v{v}" for v in versions) if isinstance(versions, list) and versions else "—"
    current = key.get("current")
    return held, "—" if not isinstance(current, bool) else "current" if current else "retired"


def _once_held(key: Mapping[str, Any]) -> str:
    """The Roles cell of a key no role of the current root uses: what it held in older roots
    (``timestamp (v1)``), or a dash."""
    return "—" if key.get("current") is not False else held_roles_text(key.get("held_roles"))


def _signed_count(role: Mapping[str, Any]) -> str:
    signed = len(_strings(role.get("signed_by")))
    total = signed + len(_strings(role.get("not_signed")))
    return f"{signed} of {total}"


def _sorted_expiries(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    def key(entry: Mapping[str, Any]) -> tuple[int, int]:
        try:
            return 0, parse_instant(str(entry.get("expires")))
        except InstantError:
            return 1, 0  # unreadable instants last, in their given order

    return sorted(_items(report, "expiries"), key=key)


def _grouped_findings(report: Mapping[str, Any]) -> list[tuple[str, list[Mapping[str, Any]]]]:
    findings = _items(report, "findings")
    groups = [(s, [f for f in findings if f.get("severity") == s]) for s in SEVERITIES]
    other = [f for f in findings if f.get("severity") not in SEVERITIES]
    if other:
        groups.append(("other", other))
    return [(severity, items) for severity, items in groups if items]


def _passed(report: Mapping[str, Any]) -> bool:
    return report.get("result") == "pass"


def _summary_rows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    summary = report.get("summary")
    summary = summary if isinstance(summary, Mapping) else {}
    roots = _strings(summary.get("root_versions"))
    checked, listed = _int(summary.get("targets_checked")), _int(summary.get("targets_listed"))
    return [
        ("Errors", str(_int(summary.get("errors")))),
        ("Warnings", str(_int(summary.get("warnings")))),
        ("Information", str(_int(summary.get("infos")))),
        ("Root chain", " → ".join(f"v{v}" for v in roots) if roots else "—"),
        ("Targets checked", f"{checked} of {listed} listed"),
        ("Bytes checked", _human_bytes(_int(summary.get("bytes_checked")))),
    ]


def _repository(report: Mapping[str, Any]) -> tuple[str, str]:
    repository = report.get("repository")
    repository = repository if isinstance(repository, Mapping) else {}
    return _text(repository.get("metadata_url")), _text(repository.get("targets_url"))


# --- Markdown --------------------------------------------------------------------------------


def md_text(value: object) -> str:
    """Plain text for Markdown: one line, punctuation that could start markup backslash-escaped
    (``|`` is escaped by the table writer, where it matters)."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(_text(value).splitlines()))


def md_code(value: object) -> str:
    """A code span holding ``value`` verbatim: the fence is one backtick longer than any run inside."""
    text = " ".join(_text(value).splitlines())
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    fence = "`" * (longest + 1)
    if text.startswith("`") or text.endswith("`") or (text.startswith(" ") and text.endswith(" ")):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def _md_cell(markdown: str) -> str:
    """A table cell: ``|`` must be escaped even inside code spans (GFM splits cells first)."""
    return markdown.replace("|", "\\|")


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown (GitHub flavour: tables and footnotes)."""
    metadata_url, targets_url = _repository(report)
    at = _text(report.get("at"))
    out = [f"# Repository audit: {md_text(metadata_url)}", "",
           f"Audited at {md_code(at)}; expiry window {md_text(report.get('window'))}.", "",
           f"- Metadata: {md_code(metadata_url)}", f"- Targets: {md_code(targets_url)}", ""]

    out += ["## Summary", "", f"**{'PASS' if _passed(report) else 'FAIL'}**", ""]
    out += _md_table(["Item", "Value"], [(md_text(k), md_text(v)) for k, v in _summary_rows(report)])

    signing = _signing(report)
    keys = _items(report, "keys")
    out += ["", "## Keys", ""]
    if keys:
        rows = []
        for number, key in enumerate(keys, 1):
            keyid = str(key.get("keyid", ""))
            marks = ", ".join(f"{md_text(role)} {_MARK_MD[mark]}" for role, mark in _signed_marks(key, signing))
            held, status = _held(key)
            rows.append((f"{md_code(_short(keyid))}[^key-{number}]", md_text(key.get("keytype")),
                         md_text(key.get("scheme")), md_text(key.get("bits")), marks or md_text(_once_held(key)),
                         md_text(held),
                         f"**{status}**" if status == "retired" else status))
        out += _md_table(["Key ID", "Type", "Scheme", "Bits", "Roles (signed?)", "In roots", "Status"], rows)
        out += ["", "✓ signed, ✗ did not sign, ? role not in the report. A retired key is held only by older "
                "roots of the chain.", ""]
        out += [f"[^key-{n}]: {md_code(key.get('keyid'))}" for n, key in enumerate(keys, 1)]
    else:
        out.append("No keys listed.")

    roles = _items(report, "roles")
    roots = sum(1 for r in roles if r.get("role") == "root")
    out += ["", "## Roles", ""]
    out += _md_table(
        ["Role", "File", "Version", "Spec", "Threshold", "Signed by", "Unknown signatures", "Expires"],
        [(md_text(_role_label(r, roots)), md_code(r.get("file")), md_text(r.get("version")),
          md_text(r.get("spec_version")), md_text(r.get("threshold")), _signed_count(r),
          md_text(r.get("unknown_signatures")), md_code(r.get("expires"))) for r in roles])

    out += ["", "## Expiry calendar", ""]
    out += _md_table(
        ["Expires", "Role", "File", "Remaining", "Status"],
        [(md_code(e.get("expires")), md_text(e.get("role")), md_code(e.get("file")), md_text(e.get("remaining")),
          _md_status(str(e.get("status")), report)) for e in _sorted_expiries(report)])

    out += ["", "## Findings", ""]
    groups = _grouped_findings(report)
    if not groups:
        out.append("No findings.")
    for severity, findings in groups:
        out += [f"### {SEVERITY_TITLES.get(severity, 'Other')} ({len(findings)})", ""]
        for finding in findings:
            out.append(f"- **{md_text(finding.get('check'))}** in {md_code(finding.get('file'))}: "
                       f"{md_text(finding.get('message'))}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


_MARK_MD = {"yes": "✓", "no": "✗", "?": "?"}


def _md_status(status: str, report: Mapping[str, Any]) -> str:
    label = EXPIRY_STATUS.get(status, status)
    if status == "soon":
        label = f"within window ({_text(report.get('window'))})"
    text = md_text(label)
    return f"**{text}**" if status in ("expired", "soon") else text


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;
color:#1b1f24;line-height:1.4}
h1{font-size:1.5rem;word-break:break-all}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de}
h3{font-size:1rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.85em;word-break:break-all}
.result{display:inline-block;font-weight:bold;padding:.2rem .8rem;border-radius:.3rem;color:#fff}
.pass{background:#1a7f37}.fail{background:#cf222e}
.yes{color:#1a7f37}.no{color:#cf222e;font-weight:bold}.unknown{color:#6e7781}
.expired{color:#cf222e;font-weight:bold}.soon{color:#9a6700;font-weight:bold}.ok{color:#1a7f37}
li.error{border-left:4px solid #cf222e}li.warning{border-left:4px solid #bf8700}li.info{border-left:4px solid #0969da}
li.other{border-left:4px solid #6e7781}
ul.findings{list-style:none;padding-left:0}ul.findings li{padding:.2rem .6rem;margin:.3rem 0}
.note{color:#57606a;font-size:.85rem}
@media print{body{margin:0;max-width:none}}
"""


def _h(value: object) -> str:
    return html.escape(_text(value), quote=True)


def _code(value: object) -> str:
    return f"<code>{_h(value)}</code>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> list[str]:
    """Cells are HTML already (each caller escapes what it puts in)."""
    attr = f' class="{cls}"' if cls else ""
    out = [f"<table{attr}>", "<thead><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows]
    out += ["</tbody>", "</table>"]
    return out


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML5 page (inline CSS only: no script, nothing fetched)."""
    metadata_url, targets_url = _repository(report)
    at = _text(report.get("at"))
    passed = _passed(report)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>Repository audit: {_h(metadata_url)} at {_h(at)}</title>",
           f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>Repository audit: {_h(metadata_url)}</h1>",
           f"<p>Audited at {_code(at)}; expiry window {_h(report.get('window'))}.</p>",
           "<ul>", f"<li>Metadata: {_code(metadata_url)}</li>", f"<li>Targets: {_code(targets_url)}</li>", "</ul>"]

    out += ["<h2>Summary</h2>",
            f'<p><span class="result {"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</span></p>']
    out += _table(["Item", "Value"], [(_h(k), _h(v)) for k, v in _summary_rows(report)], "summary")

    signing = _signing(report)
    keys = _items(report, "keys")
    out.append("<h2>Keys</h2>")
    if keys:
        rows = []
        for number, key in enumerate(keys, 1):
            keyid = str(key.get("keyid", ""))
            marks = ", ".join(
                f'{_h(role)} <span class="{_MARK_CLASS[mark]}" title="{_MARK_TITLE[mark]}">{_MARK_MD[mark]}</span>'
                for role, mark in _signed_marks(key, signing))
            cell = (f'<code><abbr title="{_h(keyid)}">{_h(_short(keyid))}</abbr></code>'
                    f'<sup><a href="#key-{number}">{number}</a></sup>')
            held, status = _held(key)
            rows.append((cell, _h(key.get("keytype")), _h(key.get("scheme")), _h(key.get("bits")),
                         marks or _h(_once_held(key)),
                         _h(held), f'<span class="{"no" if status == "retired" else "ok"}">{_h(status)}</span>'))
        out += _table(["Key ID", "Type", "Scheme", "Bits", "Roles (signed?)", "In roots", "Status"], rows, "keys")
        out.append('<p class="note">✓ signed, ✗ did not sign, ? role not in the report. A retired key is held '
                   'only by older roots of the chain. Full key IDs:</p>')
        out.append('<ol class="note">')
        out += [f'<li id="key-{n}">{_code(key.get("keyid"))}</li>' for n, key in enumerate(keys, 1)]
        out.append("</ol>")
    else:
        out.append("<p>No keys listed.</p>")

    roles = _items(report, "roles")
    roots = sum(1 for r in roles if r.get("role") == "root")
    out.append("<h2>Roles</h2>")
    out += _table(
        ["Role", "File", "Version", "Spec", "Threshold", "Signed by", "Unknown signatures", "Expires"],
        [(_h(_role_label(r, roots)), _code(r.get("file")), _h(r.get("version")), _h(r.get("spec_version")),
          _h(r.get("threshold")), _h(_signed_count(r)), _h(r.get("unknown_signatures")), _code(r.get("expires")))
         for r in roles], "roles")

    out.append("<h2>Expiry calendar</h2>")
    out += _table(
        ["Expires", "Role", "File", "Remaining", "Status"],
        [(_code(e.get("expires")), _h(e.get("role")), _code(e.get("file")), _h(e.get("remaining")),
          _html_status(str(e.get("status")), report)) for e in _sorted_expiries(report)], "expiries")

    out.append("<h2>Findings</h2>")
    groups = _grouped_findings(report)
    if not groups:
        out.append("<p>No findings.</p>")
    for severity, findings in groups:
        out.append(f"<h3>{_h(SEVERITY_TITLES.get(severity, 'Other'))} ({len(findings)})</h3>")
        out.append('<ul class="findings">')
        out += [f'<li class="{_h(severity)}"><strong>{_h(f.get("check"))}</strong> in {_code(f.get("file"))}: '
                f'{_h(f.get("message"))}</li>' for f in findings]
        out.append("</ul>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


_MARK_CLASS = {"yes": "yes", "no": "no", "?": "unknown"}
_MARK_TITLE = {"yes": "signed", "no": "did not sign", "?": "role not in the report"}


def _html_status(status: str, report: Mapping[str, Any]) -> str:
    label = EXPIRY_STATUS.get(status, status)
    if status == "soon":
        label = f"within window ({_text(report.get('window'))})"
    cls = status if status in EXPIRY_STATUS else "unknown"
    return f'<span class="{cls}">{_h(label)}</span>'


# --- choosing by file name -------------------------------------------------------------------

RENDERERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    ".md": render_markdown,
    ".markdown": render_markdown,
    ".html": render_html,
    ".htm": render_html,
}


def render(report: Mapping[str, Any], path_suffix: str) -> str:
    """Render for a file named ``path_suffix`` (a path, a name or just the suffix, e.g. ``.html``)."""
    suffix = (PurePath(path_suffix).suffix or path_suffix).lower()
    renderer = RENDERERS.get(suffix)
    if renderer is None:
        raise ConfigError(f"{path_suffix}: cannot tell the report format from the file name "
                          "(use .md, .markdown, .html or .htm)")
    return renderer(report)
