"""Markdown the studio wrote (a version's dataset card) as HTML for a page: CommonMark with tables, raw HTML
escaped rather than passed through, and links limited to markdown-it's safe schemes (no javascript:)."""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt
from markupsafe import Markup


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def to_html(text: str) -> Markup:
    return Markup(_parser().render(text))  # the parser escapes: html is off
