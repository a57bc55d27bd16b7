"""Everything the action tells GitHub: log lines, workflow commands, outputs, summary.

All text leaves through ``Reporter._emit``, which replaces every secret with
``***`` before it is written: the runner masks what ``::add-mask::`` names, and
this is the second lock on the same door (also for the outputs file and the
summary, which the runner does not mask).

Everything printed is bounded here, so nothing can bypass it: a line (an
annotation included) to ``MAX_LINE_BYTES``, the job summary to
``MAX_SUMMARY_BYTES`` (GitHub refuses a step summary over 1 MiB, and drops
it), each cut with a note of how many characters were cut. Secrets are
redacted before anything is cut, so a cut never leaves part of one.
"""

from __future__ import annotations

import re
import secrets as _random
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

MAX_LINE_BYTES = 4096  # one printed line (a build log line of 3 MB, say)
MAX_SUMMARY_BYTES = 512 * 1024  # well under GitHub's 1 MiB per step summary
NEWLINES = re.compile(r"\r\n|\r|\n")


def cut_note(cut: int) -> str:
    return f" ... [{cut} characters cut]"


def bound(text: str, limit: int = MAX_LINE_BYTES) -> str:
    """``text`` in at most ``limit`` bytes of UTF-8: cut, with a note of how many
    characters were cut, when it is longer."""
    if len(text) <= limit // 4 or len(text.encode()) <= limit:
        return text
    room = limit - len(cut_note(len(text)).encode())
    kept = text[:room].encode()[:room].decode(errors="ignore")
    return kept + cut_note(len(text) - len(kept))


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_output(name: str, value: str) -> str:
    """One entry of the GITHUB_OUTPUT file: ``name=value``, or the heredoc form
    with a random delimiter when the value spans lines."""
    if "\n" not in value and "\r" not in value:
        return f"{name}={value}\n"
    delimiter = f"ghadelimiter_{_random.token_hex(16)}"
    while delimiter in value:  # astronomically unlikely, but cheap to rule out
        delimiter = f"ghadelimiter_{_random.token_hex(16)}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


class Reporter:
    """Writes the log, annotations, outputs and summary; redacts secrets everywhere."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        debug: bool = False,
        output_path: str = "",
        summary_path: str = "",
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.debug_enabled = debug
        self.output_path = output_path
        self.summary_path = summary_path
        self._secrets: list[str] = []
        # The log follower threads may write (debug lines) while the main thread
        # does: one line at a time, a mask never half added.
        self._lock = threading.RLock()

    # -- secrets -------------------------------------------------------------
    def mask(self, value: str) -> None:
        """Ask the runner to mask ``value`` and redact it from everything we write.
        A value that spans lines is masked line by line (the runner masks within
        a line), and never written whole: ``::add-mask::`` with a newline in it
        would print its other lines as plain log lines."""
        lines = [line.strip() for line in value.splitlines()]
        whole = value.strip()
        with self._lock:
            for part in dict.fromkeys([*lines, whole]):
                if len(part) < 3 or part in self._secrets:
                    continue  # masking 1-2 characters would shred the log
                self._secrets = sorted([*self._secrets, part], key=len, reverse=True)
                if "\n" not in part and "\r" not in part:
                    self.stream.write(f"::add-mask::{part}\n")
            self.stream.flush()

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- log -----------------------------------------------------------------
    def _emit(self, line: str) -> None:
        lines = NEWLINES.split(self.redact(line))
        with self._lock:
            self.stream.write("\n".join(map(bound, lines)) + "\n")
            self.stream.flush()

    def info(self, message: str) -> None:
        self._emit(message)

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            self._emit(_command_line("::debug::", self.redact(message)))

    def notice(self, message: str, title: str = "") -> None:
        self._command("notice", message, title)

    def warning(self, message: str, title: str = "") -> None:
        self._command("warning", message, title)

    def error(self, message: str, title: str = "") -> None:
        self._command("error", message, title)

    def _command(self, kind: str, message: str, title: str) -> None:
        props = f" title={escape_property(bound(self.redact(title), 256))}" if title else ""
        self._emit(_command_line(f"::{kind}{props}::", self.redact(message)))

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        self._emit(f"::group::{title}")
        try:
            yield
        finally:
            self._emit("::endgroup::")

    def untrusted(self, lines: Iterable[str]) -> None:
        """Print text that came from elsewhere (build logs) with workflow commands
        switched off, so a log line can never set an output or a mask."""
        token = _random.token_hex(16)
        with self._lock:  # no other thread's line inside the block
            self._emit(f"::stop-commands::{token}")
            try:
                for line in lines:
                    self._emit(line)
            finally:
                self._emit(f"::{token}::")

    # -- outputs and summary -------------------------------------------------
    def write_outputs(self, outputs: dict[str, str]) -> None:
        """Append every output to GITHUB_OUTPUT; print them when there is no file
        (a local run), so the result is always visible."""
        if not self.output_path:
            for name, value in outputs.items():
                self._emit(f"{name}={value}")
            return
        text = "".join(format_output(name, self.redact(v)) for name, v in outputs.items())
        with Path(self.output_path).open("a", encoding="utf-8") as handle:
            handle.write(text)

    def write_summary(self, markdown: str) -> None:
        """Append the job summary: each line cut to ``MAX_LINE_BYTES``, the whole to
        ``MAX_SUMMARY_BYTES`` (at a line's end, with a note)."""
        if not self.summary_path:
            return
        lines = [bound(line) for line in self.redact(markdown).split("\n")]
        text = "\n".join(lines)
        if len(text.encode()) > MAX_SUMMARY_BYTES:
            kept: list[str] = []
            size = 200  # room for the note
            for line in lines:
                size += len(line.encode()) + 1
                if size > MAX_SUMMARY_BYTES:
                    break
                kept.append(line)
            cut = len(text) - len("\n".join(kept))
            text = "\n".join([*kept, "", f"*(The summary was cut here: {cut} characters.)*", ""])
        with Path(self.summary_path).open("a", encoding="utf-8") as handle:
            handle.write(text)


def _command_line(prefix: str, message: str) -> str:
    """``prefix`` + ``message`` escaped, in at most ``MAX_LINE_BYTES``: the message
    is cut before it is escaped, so no escape sequence is cut in half."""
    budget = MAX_LINE_BYTES - len(prefix.encode())
    escaped = escape_data(message)
    if len(escaped.encode()) <= budget:
        return prefix + escaped
    keep = min(len(message), budget)
    while True:
        candidate = escape_data(message[:keep]) + cut_note(len(message) - keep)
        excess = len(candidate.encode()) - budget
        if excess <= 0:
            return prefix + candidate
        keep -= excess  # each character is at least one byte of the escaped text


def count(number: int, noun: str) -> str:
    """``1 request``, ``3 requests``: a number and its noun, in the right number
    (the nouns counted here all take an -s)."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def sentence(text: str) -> str:
    """``text`` with its first letter upper-cased (messages are built lower-case,
    to be joined after a colon; alone they start a sentence)."""
    return text[:1].upper() + text[1:]


def format_seconds(seconds: float) -> str:
    """``1.2 s``, ``2 min 05 s``; a few milliseconds are ``under 0.1 s``, never a
    ``0.0 s`` that reads as if nothing ran."""
    if seconds < 0.05:
        return "under 0.1 s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"
