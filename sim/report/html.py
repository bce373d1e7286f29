"""report.html: the Markdown report rendered to one self-contained page.

Rendered with markdown-it-py (CommonMark plus tables; raw HTML in the Markdown is escaped).
Images are embedded as ``data:`` URIs read from the results folder, so the page needs no
other file and no network.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

MIME = {".svg": "image/svg+xml", ".png": "image/png"}
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 74rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #1d1d1d; }
h1 { border-bottom: 2px solid #ccc; padding-bottom: .3rem; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .86rem; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; vertical-align: top; }
th { background: #f3f3f3; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 .2rem; border-radius: 3px; }
pre { background: #f3f3f3; padding: .6rem; overflow-x: auto; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
blockquote { border-left: 4px solid #e0a000; margin: .5rem 0; padding: .2rem .8rem;
             background: #fff8e6; }
"""


def data_uri(path: Path) -> str | None:
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _inside(folder: Path, src: str) -> Path | None:
    """``src`` as a file inside ``folder`` (never outside it)."""
    target = (folder / src).resolve()
    return target if target.is_relative_to(folder.resolve()) else None


def converter(folder: Path) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")

    def image(_self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        token = tokens[idx]
        src = str(token.attrGet("src") or "")
        alt = html.escape(token.content, quote=True)
        path = _inside(folder, src)
        uri = data_uri(path) if path is not None else None
        if uri is None:
            return f"<em>[figure missing: {html.escape(src)}]</em>"
        return f'<img src="{uri}" alt="{alt}">'

    md.add_render_rule("image", image)
    return md


def render(markdown: str, folder: Path, title: str) -> str:
    """The HTML page of ``markdown``; figures referenced relative to ``folder`` are inlined."""
    body = converter(folder).render(markdown)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
