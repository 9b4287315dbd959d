"""The audit report rendered for people: Markdown and self-contained HTML, escaping hostile strings."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from repo_tool.audit.report import md_code, md_text, render, render_html, render_markdown
from repo_tool.errors import ConfigError

ROOT_KEY = "a1" * 32
TARGETS_KEY = "b2" * 32
SNAP_KEY = "c3" * 32
HOSTILE = "<script>alert('x')</script> | `tick` ``two`` ünïcødé ☃ & \"q\""


def sample_report(result: str = "fail") -> dict[str, Any]:
    def role(name: str, file: str, version: int, signed: list[str], not_signed: list[str]) -> dict[str, Any]:
        return {"role": name, "file": file, "version": version, "expires": "2030-01-01T00:00:00Z",
                "spec_version": "1.0.0", "threshold": 1, "signed_by": signed, "not_signed": not_signed,
                "unknown_signatures": 0}

    return {
        "repository": {"metadata_url": "https://example.com/meta/<b>|x`y", "targets_url": "file:///srv/targets/"},
        "at": "2025-04-03T12:00:00Z",
        "window": "3 days",
        "result": result,
        "summary": {"errors": 1, "warnings": 1, "infos": 1, "targets_listed": 7, "targets_checked": 6,
                    "bytes_checked": 3 * 1024 * 1024, "root_versions": [1, 2]},
        "roles": [
            role("root", "1.root.json", 1, [ROOT_KEY], []),
            role("root", "2.root.json", 2, [ROOT_KEY], []),
            role("timestamp", "timestamp.json", 9, [SNAP_KEY], []),
            role("snapshot", "9.snapshot.json", 9, [SNAP_KEY], []),
            role("targets", "9.targets.json", 9, [], [TARGETS_KEY]),
            {**role("déjà|vu`", "1.déjà|vu`.json", 1, [TARGETS_KEY], []), "unknown_signatures": 2,
             "spec_version": "1.0.0<i>"},
        ],
        "keys": [
            {"keyid": ROOT_KEY, "keytype": "ed25519", "scheme": "ed25519", "bits": None, "roles": ["root"]},
            {"keyid": SNAP_KEY, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256", "bits": 256,
             "roles": ["snapshot", "timestamp"]},
            {"keyid": TARGETS_KEY, "keytype": "rsa", "scheme": "rsassa-pss-sha256", "bits": 3072,
             "roles": ["targets", "déjà|vu`"]},
        ],
        "expiries": [  # deliberately out of order: the renderer sorts
            {"role": "root", "file": "2.root.json", "expires": "2026-01-01T00:00:00Z",
             "remaining": "270 days", "status": "ok"},
            {"role": "timestamp", "file": "timestamp.json", "expires": "2025-04-01T00:00:00Z",
             "remaining": "expired 2 days ago", "status": "expired"},
            {"role": "snapshot", "file": "9.snapshot.json", "expires": "2025-04-05T00:00:00.5Z",
             "remaining": "1 day 12 hours", "status": "soon"},
        ],
        "findings": [
            {"severity": "info", "check": "spec-version", "file": "1.déjà|vu`.json", "message": "info ☃ note"},
            {"severity": "warning", "check": "expiry", "file": "9.snapshot.json",
             "message": "snapshot expires within 3 days"},
            {"severity": "error", "check": "signature`s", "file": "9.targets.json<script>", "message": HOSTILE},
        ],
    }


class StrictParser(HTMLParser):
    """Records structure problems html.parser itself tolerates: unbalanced or misnested tags."""

    VOID = frozenset({"meta", "br", "hr", "img", "link", "input", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.decl: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.decl.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"unexpected </{tag}> with open {self.stack}")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(page: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.problems == [] and parser.stack == [], (parser.problems, parser.stack)
    return parser


def test_html_is_valid_self_contained_and_escaped() -> None:
    page = render_html(sample_report())
    parsed = parse_html(page)
    assert parsed.decl == ["DOCTYPE html"]
    assert [t for t, _ in parsed.tags[:3]] == ["html", "head", "meta"]
    assert parsed.tags[0][1] == {"lang": "en"} and parsed.tags[2][1] == {"charset": "utf-8"}
    assert "<script" not in page.lower()
    names = {tag for tag, _ in parsed.tags}
    assert not names & {"script", "link", "img", "iframe", "object", "embed"}
    for _tag, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs)
        assert all(value is None or not re.match(r"\s*(https?:|//|javascript:)", value) for value in attrs.values())
        assert "src" not in attrs
    text = "".join(parsed.text)
    # The hostile strings come back verbatim as text once the entities are decoded.
    assert HOSTILE in text
    assert "https://example.com/meta/<b>|x`y" in text and "9.targets.json<script>" in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "ünïcødé ☃" in page


def test_html_sections_keys_and_findings() -> None:
    page = render_html(sample_report())
    parsed = parse_html(page)
    text = "".join(parsed.text)
    title = page[page.index("<title>"):page.index("</title>")]
    assert "https://example.com/meta/&lt;b&gt;|x`y" in title and "2025-04-03T12:00:00Z" in title
    headings = re.findall(r"<h2>(.*?)</h2>", page)
    assert headings == ["Summary", "Keys", "Roles", "Expiry calendar", "Findings"]
    assert '<span class="result fail">FAIL</span>' in page and "PASS" not in text
    assert '<span class="result pass">PASS</span>' in render_html(sample_report("pass"))
    # Keys: short IDs shown, the full ones in a tooltip and the footnote list.
    for keyid in (ROOT_KEY, SNAP_KEY, TARGETS_KEY):
        assert f'<abbr title="{keyid}">{keyid[:16]}…</abbr>' in page
        assert f"<code>{keyid}</code>" in page
    targets_row = next(row for row in re.findall(r"<tr>.*?</tr>", page) if TARGETS_KEY[:16] in row)
    assert 'targets <span class="no" title="did not sign">✗</span>' in targets_row
    assert 'déjà|vu` <span class="yes" title="signed">✓</span>' in targets_row
    assert "3072" in targets_row and "rsassa-pss-sha256" in targets_row
    # Roles: both roots of the chain, with their versions; signed-by counts; unknown signatures.
    assert "root v1" in text and "root v2" in text and "0 of 1" in text and "1.0.0&lt;i&gt;" in page
    assert "v1 → v2" in text and "6 of 7 listed" in text and "3145728 bytes (3.0 MiB)" in text
    # Expiry calendar sorted, statuses marked.
    calendar = page[page.index("Expiry calendar"):page.index("<h2>Findings")]
    assert calendar.index("2025-04-01") < calendar.index("2025-04-05") < calendar.index("2026-01-01")
    assert '<span class="expired">expired</span>' in calendar
    assert '<span class="soon">within window (3 days)</span>' in calendar
    assert '<span class="ok">ok</span>' in calendar
    # Findings grouped, errors first, each with its file.
    findings = page[page.index("<h2>Findings"):]
    assert findings.index("Errors (1)") < findings.index("Warnings (1)") < findings.index("Information (1)")
    assert "<code>9.targets.json&lt;script&gt;</code>" in findings
    assert "<code>9.snapshot.json</code>" in findings and "<code>1.déjà|vu`.json</code>" in findings


def raw_outside_code_spans(text: str, chars: str) -> list[str]:
    """Unescaped occurrences of ``chars`` outside code spans (CommonMark's backtick-run rule)."""
    found: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            close = re.compile(rf"(?<!`){'`' * run}(?!`)").search(text, i + run)
            if close is not None:
                i = close.end()
                continue
            i += run
            continue
        if char in chars:
            found.append(text[max(0, i - 20):i + 20])
        i += 1
    return found


def markdown_cells(line: str) -> list[str]:
    """Split a GFM table row on the pipes that are not backslash-escaped."""
    assert line.startswith("| ") and line.endswith(" |"), line
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line[1:-1])]


def test_markdown_structure_and_escaping() -> None:
    text = render_markdown(sample_report())
    lines = text.splitlines()
    assert lines[0].startswith("# Repository audit: https://example.com/meta/\\<b\\>|x\\`y")
    assert "`2025-04-03T12:00:00Z`" in lines[2]
    assert [line for line in lines if line.startswith("## ")] == [
        "## Summary", "## Keys", "## Roles", "## Expiry calendar", "## Findings"]
    assert "**FAIL**" in text and "**PASS**" not in text
    assert "**PASS**" in render_markdown(sample_report("pass"))
    # Outside code spans (whose content renders literally) every "<" is escaped: no HTML passes through.
    assert raw_outside_code_spans(text, "<&") == [] and "\\<script\\>" in text
    # Every table row has the header's column count: no cell's "|" split a row.
    tables: dict[int, int] = {}
    for number, line in enumerate(lines):
        if line.startswith("|"):
            start = number
            while start > 0 and lines[start - 1].startswith("|"):
                start -= 1
            tables.setdefault(start, len(markdown_cells(lines[start])))
            if not line.startswith("|---"):
                assert len(markdown_cells(line)) == tables[start], line
    assert len(tables) == 4  # summary, keys, roles, expiry calendar
    # Keys: short ID with a footnote holding the full one; signing marks per role.
    for number, keyid in enumerate((ROOT_KEY, SNAP_KEY, TARGETS_KEY), 1):
        assert f"`{keyid[:16]}…`[^key-{number}]" in text
        assert f"[^key-{number}]: `{keyid}`" in lines
    targets_row = next(line for line in lines if TARGETS_KEY[:16] in line and line.startswith("|"))
    assert "targets ✗" in targets_row and "déjà\\|vu\\` ✓" in targets_row
    # The delegated role's file: a code span with a longer fence, the pipe escaped for the table.
    assert "``1.déjà\\|vu`.json``" in text
    # Findings: errors first, each with its file; the hostile message escaped.
    findings = text[text.index("## Findings"):]
    assert findings.index("### Errors (1)") < findings.index("### Warnings (1)") < findings.index(
        "### Information (1)")
    error_line = next(line for line in findings.splitlines() if line.startswith("- **signature\\`s**"))
    assert "`9.targets.json<script>`" in error_line
    assert "\\<script\\>alert('x')\\</script\\> | \\`tick\\` \\`\\`two\\`\\` ünïcødé ☃ \\& \"q\"" in error_line
    calendar = text[text.index("## Expiry calendar"):text.index("## Findings")]
    assert calendar.index("2025-04-01") < calendar.index("2025-04-05") < calendar.index("2026-01-01")
    assert "**expired**" in calendar and "**within window (3 days)**" in calendar


def test_markdown_code_spans_and_text() -> None:
    assert md_code("plain") == "`plain`"
    assert md_code("a`b") == "``a`b``"
    assert md_code("``x``") == "``` ``x`` ```"
    assert md_code("`") == "`` ` ``"
    assert md_code("two\nlines") == "`two lines`"
    assert md_text("*a* _b_ [c](d) <e> & #") == "\\*a\\* \\_b\\_ \\[c\\](d) \\<e\\> \\& \\#"


def test_missing_fields_do_not_crash() -> None:
    sparse: dict[str, Any] = {"result": "pass"}
    assert "No findings." in render_markdown(sparse) and "No keys listed." in render_markdown(sparse)
    parse_html(render_html(sparse))
    broken = copy.deepcopy(sample_report())
    broken["expiries"][0]["expires"] = "not a time"
    broken["findings"].append({"severity": "fatal?", "check": "x", "file": "f", "message": "m"})
    page = render_html(broken)
    parse_html(page)
    assert page.index("Information (1)") < page.index("Other (1)")


@pytest.mark.parametrize(("name", "marker"), [
    ("report.md", "# Repository audit"), (".markdown", "# Repository audit"), ("/tmp/x/REPORT.HTML", "<!DOCTYPE"),
    ("a.htm", "<!DOCTYPE"), (".html", "<!DOCTYPE"),
])
def test_render_chooses_by_suffix(name: str, marker: str) -> None:
    assert render(sample_report(), name).startswith(marker)


@pytest.mark.parametrize("name", ["report.txt", "report", "report.json"])
def test_render_refuses_unknown_suffix(name: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(name)):
        render(sample_report(), name)
