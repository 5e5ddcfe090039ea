"""What a user reads must show values, never the program's internals: a checker for the text of
pages (as the browser renders them), Markdown tables and terminal output."""

from __future__ import annotations

import re

LEAKS: dict[str, re.Pattern[str]] = {
    "a Python object's repr": re.compile(r"<built-in|<bound method|<function |object at 0x"),
    "a JavaScript value": re.compile(r"\bundefined\b|\[object Object\]"),
    "a non-finite number": re.compile(r"\b(?:NaN|nan|-?inf|-?Infinity)\b"),
    "None where a value belongs": re.compile(r"\bNone\b"),
    "a template placeholder": re.compile(r"\{\{|\}\}|\{%|%\}"),
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a doubled percent sign": re.compile(r"%%"),
    "a control character": re.compile(r"[\x00-\x08\x0b-\x1f\x7f]"),
}
"""What no text a user opens may hold, by what it means."""


def leaked_internals(text: str) -> list[str]:
    """'<what>: <the text around it>' for every leak in `text` (empty: none)."""
    found = []
    for what, pattern in LEAKS.items():
        for match in pattern.finditer(text):
            start, end = max(0, match.start() - 40), match.end() + 40
            found.append(f"{what}: {text[start:end]!r}")
    return found


def page_text(html: str) -> str:
    """The text of an HTML page without a browser: every text node outside <script> and
    <style>, entities decoded (closed <details> included)."""
    from html.parser import HTMLParser

    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.parts: list[str] = []
            self._skip = 0

        def handle_starttag(self, tag, attrs):
            self._skip += tag in ("script", "style")

        def handle_endtag(self, tag):
            self._skip -= tag in ("script", "style")

        def handle_data(self, data):
            if not self._skip:
                self.parts.append(data)

    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)
