"""compiler/names.py: every escaping rule, checked by the tool that reads its medium (clang for C,
the JSON and Markdown structure for reports), on the names a hostile model would use."""

import json
import re
import subprocess
import unicodedata

import pytest

from compiler.names import c_comment, c_identifier, c_string, md_code, md_text, one_line, shown

HOSTILE = [
    "*/ int pwned = 1; /*", "a */ system(\"id\"); /* b", "x\ny", "x\r\ny", "tab\there", "nul\0byte", "bell\x07",
    "\x1b[31mred\x1b[0m", "bidi\u202eevil", "zero\u200bwidth", "line\u2028sep", "back\\slash\\", "trigraph ??/",
    "??=define", "quote\"s'", "pipe|cell|", "`code`", "``", "# heading", "<script>", "[link](x)", "emoji 🙂",
    "日本語", "int", "while", "_Bool", "9starts_with_digit", "", " ", "a" * 65536, "\\", "/*", "*/", "//", "\\\n",
]


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_shown_has_no_character_a_terminal_acts_on(name):
    text = shown(name)
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn") for c in text)
    assert len(text) <= 200 + 40  # shortened, with a note of how much


def test_shown_is_reversible_enough_to_tell_names_apart():
    assert shown("a\nb") == "a\\x0ab" and shown("a\\x0ab") == "a\\\\x0ab"
    assert shown("\u202e") == "\\u202e" and shown("é") == "é"


def test_one_line_keeps_a_message_on_one_line_and_is_idempotent_on_shown_names():
    name = shown("a\nb")
    message = f"node '{name}' failed\nsecond line\x1b[2J"
    assert "\n" not in one_line(message) and "\x1b" not in one_line(message)
    assert one_line("plain 'x\\x0ay'") == "plain 'x\\x0ay'"


def _compiles(tmp_path, source: str) -> subprocess.CompletedProcess:
    path = tmp_path / "unit.c"
    path.write_text(source)
    return subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-Wno-unused-variable", "-c", str(path), "-o",
                           str(tmp_path / "unit.o")], capture_output=True, text=True)


def test_c_comment_and_c_string_survive_the_c_compiler(tmp_path):
    # Every hostile name in a comment and in a string literal: the file must compile (nothing
    # escaped the comment or the string) and the strings must hold the names' exact bytes.
    lines = ["#include <string.h>", "int check(void) {", "  int ok = 1;"]
    for name in HOSTILE:
        lines.append(f"  /* {c_comment(name)} */")
        raw = name.encode()
        literal = ", ".join(str(b) for b in raw) or "0"
        lines.append(f"  {{ static const unsigned char want[] = {{{literal}}}; "
                     f"ok &= sizeof \"{c_string(name)}\" - 1 == {len(raw)} && "
                     f"memcmp(\"{c_string(name)}\", want, {len(raw)}) == 0; }}")
    lines += ["  return ok;", "}"]
    result = _compiles(tmp_path, "\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr[:2000]
    text = (tmp_path / "unit.c").read_text()
    assert "pwned" not in text.replace("int pwned = 1", "")  # only inside an escaped comment
    assert all(ord(c) < 128 for c in text)


def test_c_string_values_are_exact_at_run_time(tmp_path):
    names = ["*/", "x\ny", "??/", "\\", "é", "a\0b", "\"quoted\""]
    body = "\n".join(f'  fwrite("{c_string(n)}", 1, sizeof "{c_string(n)}" - 1, stdout);' for n in names)
    (tmp_path / "p.c").write_text(f"#include <stdio.h>\nint main(void) {{\n{body}\n  return 0;\n}}\n")
    subprocess.run(["cc", "-std=c11", str(tmp_path / "p.c"), "-o", str(tmp_path / "p")], check=True)
    assert subprocess.run([str(tmp_path / "p")], capture_output=True).stdout == "".join(names).encode()


def test_c_identifiers_are_valid_unique_and_never_keywords(tmp_path):
    identifiers = [c_identifier("layer", index, name) for index, name in enumerate(HOSTILE)]
    assert len(set(identifiers)) == len(identifiers)
    assert all(re.fullmatch(r"layer\d+(_[a-z0-9_]+)?", i) for i in identifiers)
    source = "\n".join(f"int {i}(void) {{ return {n}; }}" for n, i in enumerate(identifiers))
    assert _compiles(tmp_path, source + "\n").returncode == 0
    assert c_identifier("layer", 3, "Conv 1/x") == "layer3_conv_1_x"
    with pytest.raises(ValueError):
        c_identifier("int", 0)


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_markdown_cells_hold_one_cell_on_one_line(name):
    for rendered in (md_code(name), md_text(name)):
        row = f"| {rendered} | next |"
        assert "\n" not in row
        # GitHub splits a row on every '|' not preceded by a backslash, code spans included.
        assert len(re.split(r"(?<!\\)\|", row)) == 4


def test_md_code_fences_contain_backticks():
    assert md_code("a`b") == "``a`b``" and md_code("`") == "`` ` ``" and md_code("x") == "`x`"


def test_json_keeps_names_exactly():
    assert json.loads(json.dumps({"n": HOSTILE})) == {"n": HOSTILE}
