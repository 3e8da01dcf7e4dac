"""HTML replies (the ChatGPT page's fragments) back to the Markdown the model wrote."""

from __future__ import annotations

import pytest

from flan_mini.sources.sharegpt_html import html_to_markdown, looks_like_html

from .fixtures.sharegpt_data import (
    CODE_MARKUPS_MARKDOWN,
    CODE_MARKUPS_REPLY,
    HTML_REPLY,
    HTML_REPLY_MARKDOWN,
    PLAIN_HTML_MARKDOWN,
    PLAIN_HTML_REPLY,
)

WRAP = '<div class="markdown prose w-full break-words dark:prose-invert light">{}</div>'


def md(body: str) -> str:
    return html_to_markdown(WRAP.format(body))


def test_a_full_chatgpt_reply():
    assert html_to_markdown(HTML_REPLY) == HTML_REPLY_MARKDOWN
    assert html_to_markdown(CODE_MARKUPS_REPLY) == CODE_MARKUPS_MARKDOWN
    assert html_to_markdown(PLAIN_HTML_REPLY) == PLAIN_HTML_MARKDOWN


@pytest.mark.parametrize("block, expected", [
    # 2022: label in a <span>, the button (with its icon) beside it, the language also on <code>'s class.
    ('<pre><div class="bg-black mb-4 rounded-md"><div class="flex items-center"><span class="">go</span><button class="flex '
     'ml-auto gap-2"><svg></svg>Copy code</button></div><div class="p-4"><code class="!whitespace-pre hljs language-go">'
     'fmt.Println(1)</code></div></div></pre>', "```go\nfmt.Println(1)\n```"),
    # ... and without the class: the label alone says it.
    ('<pre><div><div class="flex"><span>go</span><button><svg></svg>Copy code</button></div><div><code class="hljs">'
     'x := 1</code></div></div></pre>', "```go\nx := 1\n```"),
    # 2023: the label is the header's own text; the button sits in a sticky bar, inside a <span>.
    ('<pre><div><div class="flex">typescript</div><div class="sticky"><div><span data-state="closed"><button>'
     '<svg></svg>Copy code</button></span></div></div><div dir="ltr"><code class="hljs language-typescript">let a = 1;'
     '</code></div></div></pre>', "```typescript\nlet a = 1;\n```"),
    # No <code> element: the header is what comes before the button.
    ('<pre><div><div><span>sql</span><button>Copy code</button></div><div>SELECT 1;\n\n\nSELECT 2;</div></div></pre>',
     "```sql\nSELECT 1;\n\n\nSELECT 2;\n```"),
    # The button's text as plain text, not a <button>.
    ("<pre><div><span>bash</span><span>Copy code</span></div><code>ls -la</code></pre>", "```bash\nls -la\n```"),
    # Label and button text glued into the code.
    ('<pre><code>rubyCopy codeputs "hi"</code></pre>', '```ruby\nputs "hi"\n```'),
    # No label: a fence without an info string.
    ("<pre><div><div><button>Copy code</button></div><code>x</code></div></pre>", "```\nx\n```"),
])
def test_code_block_markups_keep_the_language_and_lose_label_and_button(block, expected):
    assert md(block) == expected


@pytest.mark.parametrize("text, expected", [
    (HTML_REPLY, True),
    ('<div class="request-:r0:-0 markdown prose dark:prose-invert break-words dark"><p>x</p></div>', True),
    ("<p>Just a paragraph.</p>", True),
    ("<div>a raw div answer</div>", False),  # no page markup: maybe HTML the model wrote, shown as text
    ("<div><p>Steps:</p><ol><li>Boil.</li></ol></div>", True),  # the page's markup without its wrapper
    ("<ol><li>one</li></ol>", True),
    ('2 / 2<div class="markdown prose"><p>x</p></div>', True),  # a regenerate counter before it
    ("Plain text with <p>inside</p>", False),
    ("```html\n<p>code</p>\n```", False),
    ("", False),
])
def test_which_replies_are_html(text, expected):
    assert looks_like_html(text) is expected


@pytest.mark.parametrize("body, expected", [
    ("<p>One</p><p>Two</p>", "One\n\nTwo"),
    ("<p>Line<br>break</p>", "Line\nbreak"),
    ("<p>  spaced \n  out   text </p>", "spaced out text"),
    ("<p><strong>bold</strong>, <b>b</b>, <em>it</em>, <i>i</i>, <del>gone</del></p>", "**bold**, **b**, *it*, *i*, ~~gone~~"),
    ("<p>a <strong> padded </strong> b</p>", "a **padded** b"),
    ("<p>Call <code>f(x)</code> or <code>a`b</code></p>", "Call `f(x)` or ``a`b``"),
    ("<p>&lt;div&gt; &amp; &quot;q&quot; &#39;s&#39; &nbsp;x</p>", "<div> & \"q\" 's' \u00a0x"),
    ("<h1>Title</h1><h3>Sub</h3><p>t</p>", "# Title\n\n### Sub\n\nt"),
    ("<p>a</p><hr><p>b</p>", "a\n\n---\n\nb"),
    ('<p>See <a href="https://example.org/x">the docs</a> or <a href="https://e.org">https://e.org</a></p>',
     "See [the docs](https://example.org/x) or https://e.org"),
    ('<p><img src="x.png" alt="a chart"></p>', "a chart"),
    ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
    ('<ol start="3"><li><p>c</p></li><li><p>d</p></li></ol>', "3. c\n4. d"),
    ("<ol><li>x<ul><li>y</li><li>z</li></ul></li><li>w</li></ol>", "1. x\n   - y\n   - z\n2. w"),
    ("<blockquote><p>quoted</p><p>more</p></blockquote>", "> quoted\n>\n> more"),
    ("<table><thead><tr><th>A</th><th>B</th></tr></thead><tbody><tr><td>1</td><td>x|y</td></tr><tr><td>2</td></tr></tbody></table>",
     "| A | B |\n| --- | --- |\n| 1 | x\\|y |\n| 2 |  |"),
    ("<p>kept</p><script>alert(1)</script><style>p{}</style><button>Copy code</button>", "kept"),
])
def test_elements(body, expected):
    assert md(body) == expected


def test_code_blocks_keep_their_text_exactly():
    code = "def f():\n\n\n\n    return '<b>'  # 4 blank lines and tags stay\n"
    escaped = code.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    got = md(f'<p>x</p><pre><code class="language-python">{escaped}</code></pre>')
    assert got == f"x\n\n```python\n{code.rstrip(chr(10))}\n```"


def test_code_block_language_from_the_header_and_fence_escaping():
    header = '<div class="flex"><span>javascript</span><button><svg><path d="M1"/></svg>Copy code</button></div>'
    assert md(f"<pre><div>{header}<div><code>let a = 1;</code></div></div></pre>") == "```javascript\nlet a = 1;\n```"
    # A block whose code holds ``` gets a longer fence of tildes.
    assert md("<pre><code>```md\nx\n```</code></pre>") == "~~~~\n```md\nx\n```\n~~~~"
    assert md("<pre>plain pre\n  indented</pre>") == "```\nplain pre\n  indented\n```"


def test_malformed_html_degrades_to_text():
    assert html_to_markdown("<p>unclosed <b>bold and <i>italic") == "unclosed **bold and *italic***"
    assert html_to_markdown("<p>a</b></i></div> b</p>") == "a b"
    assert html_to_markdown("<pre><code>never closed") == "```\nnever closed\n```"
    assert html_to_markdown("<p>nul\x00 byte</p>") == "nul byte"
