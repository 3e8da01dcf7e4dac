"""HTML to Markdown for ShareGPT replies exported as the ChatGPT page's HTML (stdlib `html.parser`, no dependency).

Raw ShareGPT dumps store each ChatGPT reply as the rendered page fragment, e.g.

    <div class="markdown prose w-full break-words"><p>Use <code>sorted</code>:</p><pre><div class="bg-black">
    <div class="flex"><span>python</span><button>Copy code</button></div><div><code class="language-python">
    sorted(xs)</code></div></div></pre></div>

which this module turns back into the Markdown the model wrote:

    Use `sorted`:

    ```python
    sorted(xs)
    ```

Handled: `<div>`/`<span>` wrappers (dropped, text kept), `<p>`, `<br>`, `<hr>`, headings, `<strong>`/`<b>`,
`<em>`/`<i>`, inline `<code>`, `<pre>` code blocks (language from the `language-x` class or the block's
header, the "Copy code" button dropped), nested `<ul>`/`<ol>` lists, links, images (alt text), tables,
blockquotes, and entities. `<svg>`, `<button>`, `<script>`, `<style>` are dropped with their content.
Text is not Markdown-escaped: the page rendered the model's Markdown, so literal `*` or `_` in the text
were literal in what the model wrote. Malformed HTML (unclosed tags) degrades to its text.

No HTML library is a dependency of the project (markdownify and BeautifulSoup are not installed), and the
remnants in this data are a small, known set of tags, so a careful converter on the standard library's
tolerant parser is enough.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# A reply is treated as an HTML document when it opens like the ChatGPT page's fragments do: the
# `markdown prose` / `request-:r0:` wrapper div, or, without the wrapper (dumps that dropped it), a block
# element of the page (`<div>`, `<p>`, `<ol>`, ...) when the reply also holds the end of a content element
# (`</p>`, `</li>`, `</pre>`, ...). A regenerate counter ("2 / 2") may come first. Anything else is Markdown
# (possibly with HTML *inside code*, which must stay untouched), e.g. "<div>a raw div answer</div>", which
# may be HTML the model wrote and the page showed as text.
_COUNTER_PREFIX = r"\A\s*(?:\d{1,3} / \d{1,3}\s*)?"
_HTML_DOCUMENT = re.compile(
    _COUNTER_PREFIX + r"""<div\b[^>]*\bclass\s*=\s*["'][^"']*\b(?:markdown|prose|request-)[^"']*["'][^>]*>"""
)
_BLOCK_START = re.compile(_COUNTER_PREFIX + r"<(?:div|p|ol|ul|pre|h[1-6]|table|blockquote)\b[^>]*>", re.IGNORECASE)
_CONTENT_END = re.compile(r"</(?:p|li|pre|h[1-6]|td|th|blockquote)\s*>", re.IGNORECASE)
# The header ChatGPT puts at the top of a code block, when it is left in the block's text: the language
# label and the copy button's text, glued ("pythonCopy code") or on lines of their own.
_LABEL_AND_BUTTON = re.compile(r"\A[ \t\n]*([\w#+.-]{0,30}?)[ \t]*\n?[ \t]*(?:Copy code|Copied!)+[ \t]*\n?")
_BUTTON_TEXT = re.compile(r"Copy code|Copied!")
_LABEL = re.compile(r"[\w#+.-]{1,30}")
_SKIPPED = frozenset({"svg", "button", "script", "style", "head", "title", "noscript"})
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_VOID = frozenset({"br", "hr", "img", "input", "meta", "link", "wbr", "col", "area", "source"})
_BLOCK_NEWLINES = re.compile(r"\n{3,}")
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_TRAILING_SPACES = re.compile(r"[ \t]+\n")
_LANGUAGE_CLASS = re.compile(r"(?:^|\s)(?:language|lang)-([\w#+.-]+)")
_PLACEHOLDER = "\x00{}\x00"
_PLACEHOLDERS = re.compile(r"\x00(\d+)\x00")


def looks_like_html(text: str) -> bool:
    """True for a reply stored as the ChatGPT page's HTML (see `_HTML_DOCUMENT`)."""
    start = text.lstrip()[:1]
    if not (start == "<" or start.isdigit()):
        return False
    if _HTML_DOCUMENT.match(text):
        return True
    return _BLOCK_START.match(text) is not None and _CONTENT_END.search(text) is not None


def html_to_markdown(html: str) -> str:
    """Convert one reply's HTML to Markdown (see the module docstring)."""
    parser = _MarkdownWriter()
    parser.feed(html.replace("\x00", ""))  # NUL marks code-block placeholders below
    parser.close()
    return parser.result()


class _Frame:
    """An element whose content is collected before it is written out (inline markup, cells, quotes)."""

    __slots__ = ("tag", "attrs", "parts")

    def __init__(self, tag: str, attrs: dict):
        self.tag, self.attrs, self.parts = tag, attrs, []


class _MarkdownWriter(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.frames: list[_Frame] = [_Frame("#root", {})]
        self.lists: list[list] = []  # per open list: [kind, next number]
        self.li_fresh = False  # just wrote a list marker: the next paragraph continues the item
        self.skip_depth = 0
        self.pre_depth = 0
        self.pre_text: list[str] = []  # all text inside <pre>, header included
        self.pre_code: list[str] | None = None  # text inside <pre><code>, if any
        self.pre_lang: str | None = None
        self.pre_header: list[str] = []  # text inside <pre> before the copy button: the language label
        self.in_pre_code = 0
        self.blocks: list[str] = []  # finished code blocks, swapped in after newlines are tidied
        self.tables: list[list[list[str]]] = []

    # -- output helpers ------------------------------------------------------------------------------
    @property
    def top(self) -> _Frame:
        return self.frames[-1]

    def write(self, text: str) -> None:
        self.top.parts.append(text)

    def tail(self) -> str:
        for part in reversed(self.top.parts):
            if part:
                return part[-1]
        return "\n"

    def trailing_newlines(self) -> int:
        count = 0
        for part in reversed(self.top.parts):
            stripped = part.rstrip("\n")
            count += len(part) - len(stripped)
            if stripped:
                break
        return count

    def block_break(self, newlines: int = 2) -> None:
        """End the current block: make the output end in `newlines` newlines (one inside lists).

        Idempotent, so `</p><ul>` gives one blank line, not two. At the very start nothing is written.
        """
        if self.lists:
            newlines = 1
        if any(self.top.parts):
            self.write("\n" * max(0, newlines - self.trailing_newlines()))

    def indent(self) -> str:
        return "   " * max(0, len(self.lists) - 1)

    # -- parser callbacks ----------------------------------------------------------------------------
    def handle_starttag(self, tag, attrs):
        attributes = {k: (v or "") for k, v in attrs}
        if tag == "button" and self.pre_depth and not self.skip_depth and self.pre_code is None:
            # The copy button sits in the block's header, after the language label: what came before it
            # is header, not code (some markups have no <code> element to tell them apart).
            self.pre_header += self.pre_text
            self.pre_text = []
        if self.skip_depth or tag in _SKIPPED:
            if tag not in _VOID:
                self.skip_depth += 1
            return
        if self.pre_depth:
            if tag == "pre":
                self.pre_depth += 1
            elif tag == "code":
                self.in_pre_code += 1
                if self.pre_code is None:
                    self.pre_code = []
                if match := _LANGUAGE_CLASS.search(attributes.get("class", "")):
                    self.pre_lang = self.pre_lang or match.group(1)
            elif tag == "br":
                self._pre_text("\n")
            return
        if tag == "pre":
            self.pre_depth, self.pre_text, self.pre_code, self.pre_lang, self.pre_header = 1, [], None, None, []
        elif tag == "p":
            if not self.li_fresh:
                self.block_break()
                if self.lists:
                    self.write(self.indent() + "   ")
        elif tag in _HEADINGS:
            self.block_break(2)
            self.write("#" * _HEADINGS[tag] + " ")
        elif tag == "br":
            self.write("\n" + (self.indent() + "   " if self.lists else ""))
        elif tag == "hr":
            self.block_break(2)
            self.write("---")
            self.block_break(2)
        elif tag in ("ul", "ol"):
            start = attributes.get("start", "1")
            self.block_break(1 if self.lists else 2)
            self.lists.append([tag, int(start) if start.isdigit() else 1])
        elif tag == "li":
            kind = self.lists[-1] if self.lists else ["ul", 1]
            marker = f"{kind[1]}. " if kind[0] == "ol" else "- "
            kind[1] += 1
            self.block_break(1)
            self.write(self.indent() + marker)
            self.li_fresh = True
            return
        elif tag == "img":
            alt = attributes.get("alt", "").strip()
            if alt:
                self.write(alt)
        elif tag == "table":
            self.tables.append([])
            self.block_break(2)
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("code", "strong", "b", "em", "i", "a", "td", "th", "blockquote", "del", "s"):
            self.frames.append(_Frame(tag, attributes))
        self.li_fresh = False

    def handle_endtag(self, tag):
        if self.skip_depth:
            if tag in _SKIPPED or tag not in _VOID:
                self.skip_depth -= 1
            return
        if self.pre_depth:
            if tag == "code" and self.in_pre_code:
                self.in_pre_code -= 1
            elif tag == "pre":
                self.pre_depth -= 1
                if not self.pre_depth:
                    self._finish_pre()
            return
        if tag in ("p", *_HEADINGS):
            self.block_break(2)
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
            self.block_break(2)
        elif tag == "table" and self.tables:
            self._finish_table(self.tables.pop())
        elif any(frame.tag == tag for frame in self.frames[1:]):
            # Close the element (and any unclosed inline element opened inside it).
            while True:
                frame = self.frames.pop()
                self._finish_frame(frame)
                if frame.tag == tag:
                    break

    def handle_data(self, data):
        if self.skip_depth:
            return
        if self.pre_depth:
            self._pre_text(data)
            return
        text = _SPACES.sub(" ", data)
        if self.tail() in "\n " and not (self.top.tag in ("code",)):
            text = text.lstrip(" ")
        if text:
            self.write(text)
            self.li_fresh = False

    # -- finishing elements --------------------------------------------------------------------------
    def _pre_text(self, text: str) -> None:
        self.pre_text.append(text)
        if self.in_pre_code and self.pre_code is not None:
            self.pre_code.append(text)

    def _finish_pre(self) -> None:
        everything = "".join(self.pre_text)
        header = "".join(self.pre_header)
        if self.pre_code is not None:
            code = "".join(self.pre_code)
            # The block's header (outside <code>) holds the language and the "Copy code" button text.
            header += everything.replace(code, "", 1)
        else:
            code = everything
        # A label and button text left inside the code itself ("pythonCopy codeprint(1)").
        if (glued := _LABEL_AND_BUTTON.match(code)) is not None:
            header += glued.group(1)
            code = code[glued.end() :]
        header = _BUTTON_TEXT.sub("", header).strip()
        lang = self.pre_lang or (header if _LABEL.fullmatch(header) else "")
        code = code.strip("\n")
        fence = "```" if "```" not in code else "~~~~"
        self.blocks.append(f"{fence}{lang}\n{code}\n{fence}")
        self.block_break(2)
        self.write(_PLACEHOLDER.format(len(self.blocks) - 1))
        self.block_break(2)

    def _finish_frame(self, frame: _Frame) -> None:
        text = "".join(frame.parts)
        tag = frame.tag
        if tag == "code":
            text = text.replace("\n", " ")
            ticks = "``" if "`" in text else "`"
            pad = " " if text.startswith("`") or text.endswith("`") else ""
            out = f"{ticks}{pad}{text}{pad}{ticks}" if text.strip() else text
        elif tag in ("strong", "b", "em", "i", "del", "s"):
            mark = {"strong": "**", "b": "**", "em": "*", "i": "*", "del": "~~", "s": "~~"}[tag]
            stripped = text.strip()
            # Markers must hug the text: "** bold **" is not bold in Markdown.
            out = text.replace(stripped, f"{mark}{stripped}{mark}", 1) if stripped else text
        elif tag == "a":
            href = frame.attrs.get("href", "").strip()
            label = text.strip()
            out = f"[{label}]({href})" if href and label and label != href else (label or href)
        elif tag in ("td", "th"):
            if self.tables and self.tables[-1]:
                cell = _SPACES.sub(" ", text).strip().replace("|", "\\|")
                self.tables[-1][-1].append(cell)
            return
        elif tag == "blockquote":
            lines = _BLOCK_NEWLINES.sub("\n\n", text).strip("\n").split("\n")
            out = "\n\n" + "\n".join(("> " + line.strip()).rstrip() for line in lines) + "\n\n"
        else:
            out = text
        self.write(out)

    def _finish_table(self, rows: list[list[str]]) -> None:
        rows = [row for row in rows if row]
        if not rows:
            return
        width = max(len(row) for row in rows)
        rows = [row + [""] * (width - len(row)) for row in rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        self.write("\n".join(lines))
        self.block_break(2)

    def result(self) -> str:
        while len(self.frames) > 1:  # unclosed inline elements: keep what they hold
            self._finish_frame(self.frames.pop())
        if self.pre_depth:
            self.pre_depth = 0
            self._finish_pre()
        text = "".join(self.frames[0].parts)
        text = _TRAILING_SPACES.sub("\n", text)
        text = _BLOCK_NEWLINES.sub("\n\n", text).strip()
        # Code blocks go in last, so the newline tidying above never touches code.
        return _PLACEHOLDERS.sub(lambda m: self.blocks[int(m.group(1))], text)
