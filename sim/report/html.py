"""report.html: the Markdown report rendered to one self-contained page.

Rendered with markdown-it-py (CommonMark plus tables; raw HTML in the Markdown is escaped).
Images are embedded as ``data:`` URIs read from the results folder, so the page needs no
other file and no network.  Every heading gets an ``id`` (its text, slugged), and a table
of contents of the sections (and their subsections, when there are few) follows the title.
"""

from __future__ import annotations

import base64
import html
import re
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
nav.toc { background: #f7f7f7; border: 1px solid #ddd; padding: .4rem 1rem; margin: 1rem 0; }
nav.toc ul { margin: .2rem 0; padding-left: 1.2rem; }
blockquote { border-left: 4px solid #e0a000; margin: .5rem 0; padding: .2rem .8rem;
             background: #fff8e6; }
"""


def data_uri(path: Path) -> str | None:
    """The file as a ``data:`` URI, or ``None`` when it is missing or not an image type we embed."""
    mime = MIME.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _inside(folder: Path, src: str) -> Path | None:
    """``src`` as a file inside ``folder`` (never outside it)."""
    target = (folder / src).resolve()
    return target if target.is_relative_to(folder.resolve()) else None


def converter(folder: Path) -> MarkdownIt:
    """A Markdown renderer whose images are embedded from ``folder`` (an image outside it, or
    missing, renders as a note).
    """
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


ESTIMATE = re.compile(r"(\d) \[(-?[\d.]+), (-?[\d.]+)\]")
"""``mean [lo, hi]``: kept on one line in table cells."""
TOC_SUBSECTIONS = 12
"""A section's subsections are listed in the table of contents when there are at most this many."""


def slug(text: str, taken: set[str]) -> str:
    """A unique, readable anchor: ``how-far-to-trust-this``, ``scenario-a.b-2``."""
    base = re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-") or "section"
    out, k = base, 2
    while out in taken:
        out, k = f"{base}-{k}", k + 1
    taken.add(out)
    return out


Heading = tuple[int, str, str]
"""(level, text, anchor)"""


def anchor(tokens: Sequence[Token]) -> list[Heading]:
    """Give every heading an ``id``; the headings in order."""
    taken: set[str] = set()
    out = []
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            text = tokens[i + 1].content.replace("`", "")
            ident = slug(text, taken)
            tok.attrSet("id", ident)
            out.append((int(tok.tag[1]), text, ident))
    return out


def toc(headings: Sequence[Heading]) -> str:
    """The table of contents: every level-2 heading, with its level-3 ones when few."""
    items: list[tuple[Heading, list[Heading]]] = []
    for h in headings:
        if h[0] == 2:
            items.append((h, []))
        elif h[0] == 3 and items:
            items[-1][1].append(h)
    lines = ['<nav class="toc"><strong>Contents</strong>', "<ul>"]
    for (_, text, ident), subs in items:
        inner = ""
        if 0 < len(subs) <= TOC_SUBSECTIONS:
            inner = "<ul>" + "".join(f'<li><a href="#{s[2]}">{html.escape(s[1])}</a></li>'
                                     for s in subs) + "</ul>"  # fmt: skip
        lines.append(f'<li><a href="#{ident}">{html.escape(text)}</a>{inner}</li>')
    return "\n".join([*lines, "</ul></nav>\n"])


def render(markdown: str, folder: Path, title: str) -> str:
    """The HTML page of ``markdown``; figures referenced relative to ``folder`` are inlined."""
    md = converter(folder)
    tokens = md.parse(markdown)
    headings = anchor(tokens)
    body = ESTIMATE.sub("\\1&nbsp;[\\2,&nbsp;\\3]", md.renderer.render(tokens, md.options, {}))
    cut = body.find("</h1>")
    if cut >= 0 and any(h[0] == 2 for h in headings):
        cut += len("</h1>\n")
        body = body[:cut] + toc(headings) + body[cut:]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body}</body>\n</html>\n"
    )
