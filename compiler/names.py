"""One rule for every model-derived string that leaves the compiler.

Node, tensor and graph names come from the model file, and model files come from strangers.
Nothing here trusts them: a name reaches a generated file, a report or the terminal only
through one of these functions, each of which escapes it for its medium.

    shown(name)          for people: the terminal, error messages, report text. Control and
                         invisible characters (newlines, escape sequences, bidirectional
                         overrides, NUL) become visible escapes; long names are shortened.
    c_comment(name)      inside /* ... */: ASCII only, cannot close the comment, no trigraphs,
                         no line splices.
    c_string(name)       the body of a C string literal: every byte outside a small safe set
                         as a three-digit octal escape.
    c_identifier(prefix, index, hint)
                         a C identifier derived from a name, never the name itself: the prefix
                         and a stable index make it unique and keep it off keywords and leading
                         digits; the sanitised hint is only for the reader.
    md_code(name)        a Markdown code span that cannot break a table cell.

report.json keeps names exactly (JSON escapes them itself); every other writer escapes.
"""

import re
import unicodedata

SHOWN_LIMIT = 200  # characters of a name shown before it is shortened

# Characters a terminal or an editor may act on or hide: C0/C1 controls, format characters
# (bidirectional overrides, zero-width joiners), line/paragraph separators, surrogates,
# private-use and unassigned code points.
_HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def _visible(char: str, backslash: bool = True) -> str:
    if char == "\\":
        return "\\\\" if backslash else char
    if char == " " or unicodedata.category(char) not in _HIDDEN_CATEGORIES and char.isprintable():
        return char
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text, limit: int | None = SHOWN_LIMIT) -> str:
    """`text` as one line a person can read and no terminal will act on."""
    text = str(text)
    escaped = "".join(_visible(char) for char in (text if limit is None else text[:limit]))
    if limit is not None and len(text) > limit:
        escaped += f"...({len(text) - limit} more characters)"
    return escaped


def one_line(text) -> str:
    """A whole message (ours, with names already shown()) forced onto one safe line: any control
    character left in it, newlines included, is escaped."""
    return "".join(_visible(char, backslash=False) for char in str(text))


def _ascii(text: str) -> str:
    """shown(), then every non-ASCII character as an escape too (C sources stay ASCII)."""
    return "".join(char if ord(char) < 0x80 else _visible_escape(char) for char in shown(text))


def _visible_escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def c_comment(text) -> str:
    """`text` for the inside of a /* */ comment. After _ascii there is no newline and no byte a
    C lexer treats specially except these: '*/' would end the comment, '/*' warns, '??' starts
    a trigraph in old modes, and a backslash before the end of the line would splice it."""
    text = _ascii(text).replace("*/", "*\\/").replace("/*", "/\\*").replace("??", "?\\?")
    return text + " " if text.endswith("\\") else text


_C_STRING_SAFE = re.compile(r"[A-Za-z0-9 _.,:;+\-=()\[\]{}<>@!#%^&|~]")


def c_string(text) -> str:
    """`text` as the body of a C string literal (without the quotes), from its UTF-8 bytes.
    Three-digit octal escapes cannot swallow the next character, unlike \\x escapes; '?' is
    always escaped, so no trigraph can form."""
    return "".join(chr(byte) if _C_STRING_SAFE.fullmatch(chr(byte)) else f"\\{byte:03o}"
                   for byte in str(text).encode("utf-8", errors="replace"))


_C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float for goto
if inline int long register restrict return short signed sizeof static struct switch typedef union unsigned void
volatile while _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert
_Thread_local alignas alignof bool constexpr false nullptr static_assert thread_local true typeof
typeof_unqual asm""".split())
HINT_LIMIT = 24  # characters of the sanitised name kept in an identifier


def c_identifier(prefix: str, index: int, hint: str = "") -> str:
    """A C identifier `<prefix><index>[_<hint>]`. Unique because the index is (callers number
    what they name); a valid identifier and never a keyword because `prefix` is one of ours and
    starts with a letter; `hint` is the name with everything but [A-Za-z0-9] folded to '_',
    for the reader only."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", prefix) or prefix in _C_KEYWORDS:
        raise ValueError(f"c_identifier: prefix {prefix!r} must be a plain identifier")
    cleaned = re.sub(r"[^A-Za-z0-9]+", "_", str(hint)).strip("_")[:HINT_LIMIT].strip("_").lower()
    return f"{prefix}{int(index)}" + (f"_{cleaned}" if cleaned else "")


def md_text(text) -> str:
    """`text` as plain Markdown text in a table cell or a list item: shown(), then every character
    Markdown or HTML acts on backslash-escaped."""
    return re.sub(r"([\\`*_{}\[\]()<>#+!|~&])", r"\\\1", shown(text))


def md_code(text) -> str:
    """`text` as a Markdown code span: shown() (so no newline ends the cell), '|' escaped (GitHub
    tables split cells on it even inside code), and a backtick fence longer than any run of
    backticks inside."""
    body = shown(text).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {body} " if body.startswith("`") or body.endswith("`") or not body.strip() else body
    return f"{fence}{padded}{fence}"
