"""Render an action's stdout the way a GitHub runner shows it in the job log.

The action talks to the runner with workflow commands, one per line
(``::name key=value,...::data``). The runner interprets them and shows the
result; this module does the same for a plain terminal:

- ``::group::TITLE`` ... ``::endgroup::``: a "▼ TITLE" header and the lines
  up to the end indented beneath it (groups do not nest: a new group ends the
  open one, as on GitHub);
- ``::error``, ``::warning``, ``::notice`` (properties ``title``, ``file``,
  ``line``, ``col``): an annotation, "Error: TITLE: MESSAGE";
- ``::debug::MESSAGE``: shown only with ``debug=True`` (the runner's step debug);
- ``::add-mask::VALUE``: never shown; VALUE becomes ``***`` in every later line;
- ``::stop-commands::TOKEN`` ... ``::TOKEN::``: the lines between are printed
  verbatim, commands in them are not interpreted (masking still applies);
- ``::echo::``: consumed; any other line, unknown commands included, is
  printed as it is.

Data is unescaped (``%25`` ``%0D`` ``%0A``), properties too (and ``%3A``
``%2C``), in one pass as the runner's escaping is undone. Colours (ANSI) only
when asked for: the caller decides (a TTY, ``NO_COLOR`` unset).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

GROUP_MARK = "▼"
INDENT = "  "

_DATA_ESCAPES = {"%25": "%", "%0D": "\r", "%0A": "\n"}
_PROPERTY_ESCAPES = {**_DATA_ESCAPES, "%3A": ":", "%2C": ","}
_DATA_RE = re.compile("|".join(map(re.escape, _DATA_ESCAPES)))
_PROPERTY_RE = re.compile("|".join(map(re.escape, _PROPERTY_ESCAPES)))

# The commands this renderer interprets; a line naming any other is plain text.
COMMANDS = frozenset(
    {
        "group",
        "endgroup",
        "error",
        "warning",
        "notice",
        "debug",
        "add-mask",
        "stop-commands",
        "echo",
    }
)
ANNOTATIONS = {"error": "Error", "warning": "Warning", "notice": "Notice"}

_RESET = "\033[0m"
_STYLES = {
    "error": "\033[1;31m",  # bold red
    "warning": "\033[1;33m",  # bold yellow
    "notice": "\033[1;36m",  # bold cyan
    "debug": "\033[35m",  # magenta, as the runner shows debug lines
    "group": "\033[1m",  # bold
    "dim": "\033[2m",
}


def unescape_data(text: str) -> str:
    return _DATA_RE.sub(lambda m: _DATA_ESCAPES[m.group()], text)


def unescape_property(text: str) -> str:
    return _PROPERTY_RE.sub(lambda m: _PROPERTY_ESCAPES[m.group()], text)


@dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str] = field(default_factory=dict)
    data: str = ""


def parse_command(line: str) -> Command | None:
    """``::name k=v,k2=v2::data`` -> Command; None for anything else (also for
    a command this renderer does not know, which the runner would print too)."""
    text = line.lstrip()
    if not text.startswith("::"):
        return None
    end = text.find("::", 2)
    if end < 0:
        return None
    name, _, properties_text = text[2:end].partition(" ")
    if name not in COMMANDS:
        return None
    properties: dict[str, str] = {}
    for pair in properties_text.strip().split(","):
        key, sep, value = pair.partition("=")
        if sep and key and value:  # the runner drops "key=" and "=value"
            properties[key] = unescape_property(value)
    return Command(name, properties, unescape_data(text[end + 2 :]))


class RunnerLog:
    """Feed it the action's output line by line; each call returns the lines
    to print (often none). Keeps the state the runner keeps: masks, the open
    group, stop-commands."""

    def __init__(self, *, color: bool = False, debug: bool = False) -> None:
        self.color = color
        self.debug = debug
        self._secrets: list[str] = []
        self._in_group = False
        self._stop_token: str | None = None

    # -- masking -------------------------------------------------------------
    def add_mask(self, value: str) -> None:
        """Mask ``value`` (and each of its lines) from now on."""
        for part in {value, *value.splitlines()}:
            if part.strip() and part not in self._secrets:
                self._secrets.append(part)
        self._secrets.sort(key=len, reverse=True)  # longest first: no partial leaks

    def mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- output ----------------------------------------------------------------
    def feed(self, line: str) -> list[str]:
        """Render one line of the action's stdout (a trailing newline is ignored)."""
        line = line.rstrip("\r\n")
        if self._stop_token is not None:
            if line.strip() == f"::{self._stop_token}::":
                self._stop_token = None
                return []
            return self.text(line)
        command = parse_command(line)
        if command is None:
            return self.text(line)
        return self._interpret(command)

    def feed_all(self, lines: Iterable[str]) -> list[str]:
        return [out for line in lines for out in self.feed(line)] + self.close()

    def text(self, line: str) -> list[str]:
        """A plain line, masked, indented when a group is open."""
        return [self._indent(self.mask(line))]

    def group(self, title: str) -> list[str]:
        lines = self.end_group()
        self._in_group = True
        return [*lines, self._paint("group", f"{GROUP_MARK} {self.mask(title)}")]

    def end_group(self) -> list[str]:
        self._in_group = False
        return []

    def close(self) -> list[str]:
        """The action ended: an open group ends, commands work again."""
        self._stop_token = None
        return self.end_group()

    # -- commands --------------------------------------------------------------
    def _interpret(self, command: Command) -> list[str]:
        if command.name == "group":
            return self.group(command.data)
        if command.name == "endgroup":
            return self.end_group()
        if command.name == "add-mask":
            if not command.data.strip():
                return self._annotation(
                    "warning", "Can't add secret mask for empty string in ##[add-mask] command."
                )
            self.add_mask(command.data)
            return []
        if command.name == "stop-commands":
            if not command.data:
                return self._annotation("warning", "Invalid stop-commands token: it is empty.")
            self._stop_token = command.data
            return []
        if command.name == "debug":
            if not self.debug:
                return []
            return [
                self._indent(self._paint("debug", f"Debug: {line}"))
                for line in self.mask(command.data).splitlines() or [""]
            ]
        if command.name in ANNOTATIONS:
            return self._annotation(command.name, command.data, command.properties)
        return []  # echo: consumed, as the runner does

    def _annotation(
        self, kind: str, message: str, properties: dict[str, str] | None = None
    ) -> list[str]:
        properties = properties or {}
        label = f"{ANNOTATIONS[kind]}: "
        title = self.mask(properties.get("title", ""))
        lines = self.mask(message).splitlines() or [""]
        where = ":".join(properties[k] for k in ("file", "line", "col") if properties.get(k))
        if where:
            lines[-1] += f" ({self.mask(where)})"
        first = f"{title}: {lines[0]}" if title else lines[0]
        rendered = [self._paint(kind, label.rstrip()) + " " + first]
        rendered += [" " * len(label) + rest for rest in lines[1:]]
        return [self._indent(line) for line in rendered]

    def _indent(self, line: str) -> str:
        return INDENT + line if self._in_group and line else line

    def _paint(self, style: str, text: str) -> str:
        return f"{_STYLES[style]}{text}{_RESET}" if self.color else text
