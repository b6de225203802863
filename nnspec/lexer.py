"""A Pygments lexer for `.nn` specs, registered as `nnspec` (aliases `nn`; files `*.nn`) through
the `pygments.lexers` entry point, so `pygmentize -l nnspec`, Sphinx, MkDocs and rich find it.

It follows grammars/nnspec.lark: comments, strings, numbers, the keywords (`let` where it starts
a constant), links (`->`, `~>`), comparisons and arithmetic; the first word of a layer
declaration (`dense  h: 4`) is a kind (`Keyword.Type`) and the second the layer's name; a name
before `(` is a call (`sgd(lr=0.1)`). Pygments alone is imported (rich brings it), so that
nnspec check never loads it.
"""

from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class NnspecLexer(RegexLexer):
    """nnspec's `.nn` language: networks, blocks, layers, links and train sections."""

    name = "nnspec"
    aliases = ["nnspec", "nn"]
    filenames = ["*.nn"]
    mimetypes = ["text/x-nnspec"]
    url = "https://github.com/nnspec/nnspec"
    flags = re.MULTILINE

    tokens = {
        "root": [
            # a layer declaration at the start of a line or after `;` or `{`: KIND NAME
            (
                rf"((?:^|(?<=[;{{]))[ \t]*)(?!(?:output|expect|let|use|network|block|train)\b)"
                rf"({_NAME})([ \t]+)({_NAME})(?=[ \t]*(?::|$|#|;|}}))",
                bygroups(Whitespace, Keyword.Type, Whitespace, Name.Variable),
            ),
            (r"\n", Whitespace),
            (r"[ \t\r\f]+", Whitespace),
            (r"#.*$", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            (
                words(("network", "block", "train", "use", "output", "expect"), suffix=r"\b"),
                Keyword,
            ),
            (rf"(let)([ \t]+)({_NAME})(?=[ \t]*=)", bygroups(Keyword, Whitespace, Name.Constant)),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (r"->|~>", Operator),
            (r">=|<=|>|<", Operator),
            (r"//|[+\-*/=]", Operator),
            (r"(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", Number),
            (rf"{_NAME}(?=[ \t]*\()", Name.Function),
            (_NAME, Name),
            (r"[{}()\[\],:.;?]", Punctuation),
        ]
    }


def highlight_html(source: str, inline: bool = False) -> str:
    """`source` as highlighted HTML: `<div class="highlight"><pre>...</pre></div>`, with classes
    for `css()`'s style sheet, or with `inline` colours (a page with no style sheet for them)."""
    from pygments import highlight
    from pygments.formatters import HtmlFormatter

    formatter = HtmlFormatter(noclasses=inline, nobackground=inline)
    return highlight(source, NnspecLexer(), formatter)


def css(style: str = "default") -> str:
    """The style sheet for `highlight_html`'s classes (scoped to `.highlight`)."""
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(style=style).get_style_defs(".highlight")
