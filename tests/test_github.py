"""Outputs file format, masking, escaping and untrusted log output."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from codesphere_action.github import Reporter, escape_data, escape_property, format_output
from emulator.runner import parse_outputs

from .fakes import capture_reporter


def test_single_line_values_use_name_equals_value() -> None:
    assert format_output("status", "success") == "status=success\n"


def test_multi_line_values_use_a_random_heredoc_delimiter() -> None:
    first = format_output("log", "a\nb")
    second = format_output("log", "a\nb")
    assert re.fullmatch(r"log<<(ghadelimiter_[0-9a-f]{32})\na\nb\n\1\n", first)
    assert first != second  # the delimiter is random per value


@given(st.dictionaries(st.from_regex(r"[a-z][a-z-]{0,10}", fullmatch=True), st.text()))
def test_outputs_file_round_trips(values: dict[str, str]) -> None:
    text = "".join(format_output(k, v.replace("\r", "")) for k, v in values.items())
    assert parse_outputs(text) == {k: v.replace("\r", "") for k, v in values.items()}


def test_outputs_are_appended_and_redacted(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier=kept\n")
    reporter = Reporter(io.StringIO(), output_path=str(path))
    reporter.mask("secret-token-123")
    reporter.write_outputs({"status": "failed", "note": "got secret-token-123\nsecond line"})
    outputs = parse_outputs(path.read_text())
    assert outputs == {"earlier": "kept", "status": "failed", "note": "got ***\nsecond line"}


def test_mask_then_every_line_is_redacted() -> None:
    reporter, stream = capture_reporter()
    reporter.mask("tok-abcdef")
    reporter.info("Authorization: Bearer tok-abcdef")
    reporter.error("failed with tok-abcdef", title="t tok-abcdef")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "::add-mask::tok-abcdef"
    assert all("tok-abcdef" not in line for line in lines[1:])


def test_multi_line_secrets_are_masked_line_by_line() -> None:
    reporter, stream = capture_reporter()
    reporter.mask("line-one\nline-two")
    assert "::add-mask::line-one" in stream.getvalue()
    assert "::add-mask::line-two" in stream.getvalue()


def test_a_multi_line_secret_is_never_written_whole_in_an_add_mask_command() -> None:
    """``::add-mask::a\nb`` would print ``b`` as a plain log line (issue 17)."""
    reporter, stream = capture_reporter()
    reporter.mask("-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----\n")
    lines = stream.getvalue().splitlines()
    assert lines == [
        "::add-mask::-----BEGIN KEY-----",
        "::add-mask::MIIEvQIBADANBg",
        "::add-mask::-----END KEY-----",
    ]
    reporter.info("key: -----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----")
    assert "MIIEvQIBADANBg" not in stream.getvalue().split("\n", 3)[3]


def test_annotations_escape_their_message_and_properties() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c") == "a%3Ab%2Cc"
    reporter, stream = capture_reporter()
    reporter.error("line1\nline2", title="Stage: prepare, failed")
    assert stream.getvalue() == "::error title=Stage%3A prepare%2C failed::line1%0Aline2\n"


def test_debug_lines_only_when_debugging() -> None:
    quiet, quiet_stream = capture_reporter()
    quiet.debug("GET /x")
    loud, loud_stream = capture_reporter(debug=True)
    loud.debug("GET /x")
    assert quiet_stream.getvalue() == ""
    assert loud_stream.getvalue() == "::debug::GET /x\n"


def test_untrusted_lines_cannot_issue_workflow_commands() -> None:
    reporter, stream = capture_reporter()
    reporter.untrusted(["::set-output name=status::success", "::add-mask::x"])
    lines = stream.getvalue().splitlines()
    start = re.fullmatch(r"::stop-commands::([0-9a-f]{32})", lines[0])
    assert start is not None
    assert lines[1:3] == ["::set-output name=status::success", "::add-mask::x"]
    assert lines[3] == f"::{start.group(1)}::"


# -- bounds (issue 17) -----------------------------------------------------------


def test_every_printed_line_is_cut_to_4_kib_with_a_note() -> None:
    reporter, stream = capture_reporter(debug=True)
    reporter.info("short\n" + "é" * 10_000 + "\nend")
    reporter.untrusted(["x" * 100_000])
    reporter.debug("d" * 9000)
    for line in stream.getvalue().splitlines():
        assert len(line.encode()) <= 4096
    lines = stream.getvalue().splitlines()
    assert lines[0] == "short" and lines[2] == "end"
    assert lines[1].startswith("éé") and lines[1].endswith(" characters cut]")
    cut = int(re.search(r"\[(\d+) characters cut\]", lines[1]).group(1))  # type: ignore[union-attr]
    assert cut + lines[1].count("é") == 10_000


def test_an_annotation_is_cut_before_it_is_escaped() -> None:
    reporter, stream = capture_reporter()
    reporter.error("100%\n" * 5000, title="Stage failed")
    (line,) = stream.getvalue().splitlines()
    assert len(line.encode()) <= 4096
    assert line.startswith("::error title=Stage failed::100%25%0A100%25%0A")
    body = line.split("::", 2)[2]
    kept = body.rsplit(" ... [", 1)[0]
    assert kept.endswith(("%25", "%0A", "100")), kept[-8:]  # no escape cut in half


def test_a_secret_is_redacted_before_a_line_is_cut() -> None:
    reporter, stream = capture_reporter()
    secret = "s3cr3t-" + "k" * 30
    reporter.mask(secret)
    reporter.info("a" * 4060 + secret)  # the cut would fall inside the secret
    reporter.error("b" * 4060 + secret)
    for line in stream.getvalue().splitlines()[1:]:
        assert "s3cr3t" not in line and "kkkkk" not in line


def test_the_summary_is_cut_well_under_1_mib(tmp_path: Path) -> None:
    path = tmp_path / "summary"
    reporter = Reporter(io.StringIO(), summary_path=str(path))
    reporter.write_summary("# head\n" + "| row | " + "y" * 9000 + " |\n" + "line\n" * 200_000)
    text = path.read_text()
    assert len(text.encode()) <= 512 * 1024
    assert text.startswith("# head\n| row | yyy")
    assert all(len(line.encode()) <= 4096 for line in text.splitlines())
    assert "*(The summary was cut here:" in text.splitlines()[-1]


class SlowStream:
    """A stream whose every write lands in two halves, with a thread switch
    between them: lines from two threads interleave unless the writer holds a
    lock across a whole line."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        half = len(text) // 2
        self.parts.append(text[:half])
        time.sleep(0.0001)
        self.parts.append(text[half:])
        return len(text)

    def flush(self) -> None:
        pass


def test_the_reporter_writes_whole_lines_from_two_threads() -> None:
    stream = SlowStream()
    reporter = Reporter(stream)  # type: ignore[arg-type]

    def write(name: str) -> None:
        for number in range(200):
            reporter.info(f"{name} line {number} " + name * 20)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = "".join(stream.parts).splitlines()
    assert len(lines) == 400
    for line in lines:
        name = line[0]
        assert line == f"{name} line {line.split()[2]} " + name * 20, line
