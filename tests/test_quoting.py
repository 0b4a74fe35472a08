"""Known answers for the quoting functions and for the parsers tests/test_fuzz.py trusts."""

from __future__ import annotations

import shlex

import pytest

from deploykit import quoting
from tests import parsers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("example.com", "example.com"),
        ("/srv/a b", '"/srv/a b"'),
        ('a"b\\', '"a\\"b\\\\"'),
        ("a;b{c}", '"a;b{c}"'),
        ("#x", '"#x"'),
        ("", '""'),
    ],
)
def test_nginx(value: str, expected: str) -> None:
    assert quoting.nginx(value) == expected


@pytest.mark.parametrize("value", ["$host", "a\nb", "a\rb", "a\x00", "a\u2028b"])
def test_nginx_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        quoting.nginx(value)


def test_systemd_argv() -> None:
    argv = ["/usr/bin/python", "-m", "uvicorn", "100%", "$HOME", 'a "b"', "x\\", ";", ""]
    line = quoting.systemd_argv(argv)
    assert line == '/usr/bin/python -m uvicorn "100%%" "$$HOME" "a \\"b\\"" "x\\\\" ";" ""'
    assert parsers.systemd_exec(line) == argv


def test_systemd_argv_quotes_a_first_word_that_looks_like_a_prefix() -> None:
    assert quoting.systemd_argv(["-x", "-x"]) == '"-x" -x'


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        # systemd.service(5) examples and rules.
        ("/bin/echo one two", ["/bin/echo", "one", "two"]),
        ("/bin/echo 'one two' \"three\"", ["/bin/echo", "one two", "three"]),
        ("/bin/echo \\x41 \\; \\\\", ["/bin/echo", "A", ";", "\\"]),
        ("/bin/echo %%n $$X", ["/bin/echo", "%n", "$X"]),
    ],
)
def test_systemd_exec_parser(line: str, argv: list[str]) -> None:
    assert parsers.systemd_exec(line) == argv


@pytest.mark.parametrize(
    "line", ["/bin/echo ; /bin/rm", "/bin/echo %n", "/bin/echo $HOME", "/bin/echo ${X}", '"unterminated']
)
def test_systemd_exec_parser_reports_structure(line: str) -> None:
    with pytest.raises(parsers.Structure):
        parsers.systemd_exec(line)


def test_systemd_unit_parser_continuation_and_comments() -> None:
    unit = "[Service]\n# c\n; c\nExecStart=/bin/a \\\n  b\nUser=x\r"
    assert parsers.systemd_unit(unit) == [("Service", "ExecStart", "/bin/a    b"), ("Service", "User", "x")]


def test_systemd_value_refuses_edges() -> None:
    assert quoting.systemd_value("/run/%i") == "/run/%%i"
    for value in (" a", "a ", "a\\"):
        with pytest.raises(ValueError):
            quoting.systemd_value(value)


def test_env_file() -> None:
    value = 'a "b" $HOME `x` \\ \' %n ;#'
    text = f"A={quoting.env_file_value(value)}\n"
    assert text == 'A="a \\"b\\" \\$HOME \\`x\\` \\\\ \' %n ;#"\n'
    assert parsers.systemd_env_file(text) == {"A": value}


def test_env_file_parser_known_answers() -> None:
    text = "# c\nA=plain  \nB='single $x'\nC=\"d\\q\"\nexport_ok=1\n"
    assert parsers.systemd_env_file(text) == {"A": "plain", "B": "single $x", "C": "d\\q", "export_ok": "1"}


def test_ini_and_shell_survive_inline_comments() -> None:
    argv = ["/bin/echo", "a ;b", "c #d", "100%", "it's"]
    command = quoting.shell_argv(argv)
    assert " ;" not in command and " #" not in command
    assert shlex.split(command) == argv
    assert quoting.ini("100%") == "100%%"
    for value in ("a ;b", "a #b", " a", "a "):
        with pytest.raises(ValueError):
            quoting.ini(value)


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("A", "x y"), ("B", 'q"z')], 'A="x y",B=\'q"z\''),
        ([("A", "")], 'A=""'),
    ],
)
def test_supervisor_environment(pairs: list[tuple[str, str]], expected: str) -> None:
    assert quoting.supervisor_environment(pairs) == expected


@pytest.mark.parametrize("value", ["'x", 'x"', "a'b\"c", "a ;b"])
def test_supervisor_environment_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        quoting.supervisor_environment([("A", value)])


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/srv/x", "/srv/x"), ("a b\\", "`a b\\`"), ('a`"', '"a`\\""'), ("@m", "`@m`")],
)
def test_caddy(value: str, expected: str) -> None:
    assert quoting.caddy(value) == expected


@pytest.mark.parametrize("value", ["{$X}", "a`\\", "a\nb"])
def test_caddy_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        quoting.caddy(value)


def test_apache() -> None:
    assert quoting.apache('a"b\\') == '"a\\"b\\\\"'
    with pytest.raises(ValueError):
        quoting.apache("${X}")
