"""The ``env`` and ``secret-env`` inputs: dotenv lines, and the runner's heredoc
form for a value that spans lines.

An error names the line number and what is expected, never any part of a line:
in secret-env a "name" may well be a password (a YAML-style line, a value
wrapped onto a line of its own).
"""

from __future__ import annotations

import re

from .errors import ConfigError
from .models import EnvVar

# The spec's pattern for environment variable names.
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")

# The variable the action sets on every workspace it creates (ownership.py).
MARK_NAME = "CODESPHERE_RELEASE"

# NAME<<DELIM ... DELIM, the runner's own form for a value that spans lines.
HEREDOC = re.compile(r"^(\S+?)<<([A-Za-z0-9_]+)$")

# "NAME: value": the YAML habit, which is not this format.
YAML_STYLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*\s*:")

# A "name" of mixed-case letters and digits only, with nothing after its '=':
# the tail of a base64 value wrapped onto a line of its own ("s3cr3tPassw0rd=").
BASE64_RUN = re.compile(r"^(?=.*[a-z])(?=.*[A-Z])(?=.*[0-9])[A-Za-z0-9]{8,}$")

MULTI_LINE_HINT = "a value that spans lines goes in NAME<<EOF, its lines, then a line EOF"

NOT_SHOWN = "(the line is not shown)"


def parse_env(name: str, value: str) -> tuple[EnvVar, ...]:
    """Dotenv style: ``NAME=value`` per line, ``#`` comments, blank lines, optional
    ``export`` prefix, values optionally in single or double quotes (closed on
    their line); a value that spans lines as ``NAME<<DELIM``, its lines, then a
    line ``DELIM`` (DELIM: letters, digits, ``_``).

    Raises ConfigError naming the line number, never any part of a line: in
    secret-env a "name" may well be a password (a YAML-style line, a value
    wrapped onto a line of its own)."""
    return tuple(var for _, var in env_lines(name, value))


def env_lines(name: str, value: str) -> list[tuple[int, EnvVar]]:
    """``parse_env`` with the line number each variable starts on."""
    lines = value.splitlines()
    result: dict[str, tuple[int, EnvVar]] = {}
    # The NAME=value line right before, as (number, indentation): a line indented
    # deeper right after it is the rest of its value, wrapped.
    before: tuple[int, int] | None = None
    index = 0
    while index < len(lines):
        number, raw_line = index + 1, lines[index]
        index += 1
        line = raw_line.strip()
        if not line or line.startswith("#"):
            before = None
            continue
        indent = len(raw_line) - len(raw_line.lstrip())
        if before is not None and indent > before[1]:
            raise ConfigError(
                name,
                f"line {number}",
                f"it is indented deeper than line {before[0]}, so it looks like the rest of "
                f"line {before[0]}'s value {NOT_SHOWN}. Put each value on its line, or: "
                + MULTI_LINE_HINT,
            )
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, val = line.partition("=")
        heredoc = None if sep else HEREDOC.match(line)
        if heredoc is not None:
            key, delimiter = heredoc.groups()
            val, index = _heredoc_value(name, number, lines, index, delimiter)
            before = None
        elif not sep:
            # The line may be a value (a secret) on a line of its own: never echo it.
            raise ConfigError(name, f"line {number}", _expected_line(line))
        else:
            key, val = key.strip(), _value(name, number, key.strip(), val.strip())
            before = (number, indent)
        _check_name(name, number, line, key, result)
        result[key] = (number, EnvVar(key, val))
    return list(result.values())


def _heredoc_value(
    name: str, number: int, lines: list[str], index: int, delimiter: str
) -> tuple[str, int]:
    """The lines from ``index`` up to the one holding only ``delimiter``, as one
    value; and the index after the delimiter's line."""
    end = index
    while end < len(lines) and lines[end].strip() != delimiter:
        end += 1
    if end == len(lines):
        raise ConfigError(
            name,
            f"line {number}",
            f"the multi-line value it starts is never closed {NOT_SHOWN}: end it with a line "
            "that holds only the delimiter named after '<<'",
        )
    return "\n".join(lines[index:end]), end + 1


def _value(name: str, number: int, key: str, val: str) -> str:
    """The value of a ``NAME=value`` line, quotes taken off; refused when it is
    the tail of a wrapped value or opens a quote it does not close."""
    if (val and set(val) == {"="}) or (not val and BASE64_RUN.match(key)):
        # "s3cr3t==" or "s3cr3tPassw0rd=": the tail of a wrapped base64 value
        # (its padding), not a variable.
        raise ConfigError(
            name,
            f"line {number}",
            "it holds nothing but '=' after its name, so it looks like the end of a value "
            f"wrapped onto a line of its own {NOT_SHOWN}. Put the whole value on one line, "
            "or: " + MULTI_LINE_HINT,
        )
    if val[:1] not in ("'", '"'):
        return val
    if len(val) < 2 or val[-1] != val[0]:
        raise ConfigError(
            name,
            f"line {number}",
            f"its value opens a quote that does not close at the end of the line {NOT_SHOWN}: "
            + MULTI_LINE_HINT,
        )
    return val[1:-1]


def _check_name(
    name: str, number: int, line: str, key: str, seen: dict[str, tuple[int, EnvVar]]
) -> None:
    if not ENV_NAME.match(key):
        raise ConfigError(name, f"line {number}", _expected_line(line))
    if key in seen:
        raise ConfigError(
            name,
            f"line {number}",
            f"it sets the variable line {seen[key][0]} sets already {NOT_SHOWN}: each "
            "variable may appear only once",
        )
    if key == MARK_NAME:  # the action's own name, not the user's: safe to show
        raise ConfigError(
            name, f"line {number}: {key}", "that name is the action's own mark; pick another"
        )


def _expected_line(line: str) -> str:
    """What a line that is no ``NAME=value`` should be (its text is never shown)."""
    expected = (
        "expected NAME=value, with a name of letters, digits, '_', '.', '-', not starting "
        f"with a digit {NOT_SHOWN}"
    )
    if YAML_STYLE.match(line):
        expected += "; 'NAME: value' (YAML style) is not this format: write NAME=value"
    return f"{expected}; {MULTI_LINE_HINT}"


def env_and_secrets(
    env_text: str, secret_text: str
) -> tuple[tuple[EnvVar, ...], tuple[EnvVar, ...]]:
    """The ``env`` and ``secret-env`` inputs, with no name in both."""
    env = env_lines("env", env_text)
    secret_env = env_lines("secret-env", secret_text)
    _refuse_empty_secrets(secret_env)
    plain = {var.name: number for number, var in env}
    for number, var in secret_env:
        if var.name in plain:
            raise ConfigError(
                "secret-env",
                f"line {number}",
                f"it sets a variable that line {plain[var.name]} of the env input sets too "
                f"{NOT_SHOWN}: set each variable in one of them",
            )
    return tuple(var for _, var in env), tuple(var for _, var in secret_env)


def _refuse_empty_secrets(lines: list[tuple[int, EnvVar]]) -> None:
    """A secret with no value is no secret: the line is more likely part of one,
    wrapped onto a line of its own (a base64 value's ``=`` padding), or a name
    whose value went onto the next line, which then reads as a "name". Refuse
    it, naming only the line number (the later line of such a pair)."""
    empty = [number for number, var in lines if not var.value]
    if not empty:
        return
    numbers = [number for number, _ in lines]
    first = empty[0]
    after = numbers[numbers.index(first) + 1] if first != numbers[-1] else None
    if after in empty:
        raise ConfigError(
            "secret-env",
            f"line {after}",
            f"it follows line {first}, which sets a secret to nothing, and has no value itself: "
            f"it looks like line {first}'s value, wrapped onto a line of its own {NOT_SHOWN}. "
            "Put the value on the line of its name, or: " + MULTI_LINE_HINT,
        )
    raise ConfigError(
        "secret-env",
        f"line {first}",
        f"it sets a secret to nothing, so it looks like the end of a value wrapped onto a line "
        f"of its own {NOT_SHOWN}. Put the whole value on the line of its name, or: "
        + MULTI_LINE_HINT,
    )
