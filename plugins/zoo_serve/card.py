"""A model card (the registry's README.md: YAML front matter, then Markdown) as safe HTML: headings, paragraphs,
lists, tables, code blocks, inline code, bold and folded ``<details>`` blocks. Everything is escaped first, so
a card's text never becomes markup; the front matter is kept out (its figures are on the page already)."""

from __future__ import annotations

import re
from html import escape

_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
_DETAILS = re.compile(r"^<details><summary>(.*)</summary>$")
_BULLET = re.compile(r"^[-*]\s+")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def _inline(text: str) -> str:
    html = escape(text)
    html = _INLINE_CODE.sub(r"<code>\1</code>", html)
    html = _BOLD.sub(r"<strong>\1</strong>", html)
    return _LINK.sub(r'<a href="\2" rel="noopener noreferrer">\1</a>', html)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[end + 4:].lstrip("\n")
    return text


def card_html(text: str) -> str:
    """The card's Markdown body as HTML."""
    lines = strip_front_matter(text).splitlines()
    out: list[str] = []
    paragraph: list[str] = []
    i = 0

    def flush() -> None:
        if paragraph:
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
            paragraph.clear()

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            block = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                block.append(lines[i])
                i += 1
            out.append(f"<pre><code>{escape(chr(10).join(block))}</code></pre>")
        elif match := _DETAILS.match(stripped):  # the one HTML a card holds: a folded block, rebuilt here
            flush()
            out.append(f"<details><summary>{_inline(match.group(1))}</summary>")
        elif stripped == "</details>":
            flush()
            out.append("</details>")
        elif match := re.match(r"^(#{1,6})\s+(.*)$", stripped):
            flush()
            level = min(len(match.group(1)) + 2, 6)  # the page has its own h1 and h2
            out.append(f"<h{level}>{_inline(match.group(2))}</h{level}>")
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?[\s:|-]+\|?$", lines[i + 1].strip()):
            flush()
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(stripped))
            body = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                body.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
            continue
        elif _BULLET.match(stripped):
            flush()
            items = []
            while i < len(lines) and _BULLET.match(lines[i].strip()):
                items.append(f"<li>{_inline(_BULLET.sub('', lines[i].strip()))}</li>")
                i += 1
            out.append(f"<ul>{''.join(items)}</ul>")
            continue
        elif not stripped:
            flush()
        else:
            paragraph.append(stripped)
        i += 1
    flush()
    return "\n".join(out)
