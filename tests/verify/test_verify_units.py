"""The parts of verify that need no Azure: parsing run command output as real AKS prints it (not just
as the emulator does), and the report's statuses, exit code and renderings."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

from aks_lockdown.verify import Check, VerifyReport, emit, render_markdown, render_text
from aks_lockdown.verify.incluster import (
    MARKER,
    Batch,
    curl_command,
    parse_curl,
    parse_nslookup,
    parse_services,
)


def test_batch_command_and_sections() -> None:
    batch = Batch()
    batch.add("svc", "kubectl get svc -A -o json")
    batch.add("egress.0", curl_command("https://mcr.microsoft.com", 5))
    command = batch.command()
    assert command == (
        f"echo {MARKER}:svc ; kubectl get svc -A -o json ; echo {MARKER}:egress.0 ; "
        "curl -sS -o /dev/null -w '%{http_code}\\n' --max-time 5 https://mcr.microsoft.com ; "
        f"echo {MARKER}:end"
    )


def test_parse_tolerates_output_without_newline_before_a_marker() -> None:
    # A real shell: curl -w without a trailing newline runs into the next echo.
    batch = Batch()
    batch.parse(f"{MARKER}:a\n200{MARKER}:b\ncurl: (28) Connection timed out\n000\n{MARKER}:end\n")
    assert batch.outputs == {"a": "200", "b": "curl: (28) Connection timed out\n000"}


def test_curl_results() -> None:
    ok = parse_curl("https://x", "200")
    assert ok.reached and ok.describe() == "HTTP 200"
    # Any answer from the destination counts as reachable, a 404 included.
    assert parse_curl("https://x", "404").reached
    timeout = parse_curl("https://x", "curl: (28) Connection timed out after 5001 milliseconds\n000")
    assert (
        not timeout.reached
        and timeout.describe() == "curl: (28) Connection timed out after 5001 milliseconds"
    )
    # Azure Firewall answers a denied plain-HTTP request itself with 470: that is blocked, not reached.
    deny = parse_curl("http://neverssl.com", "470")
    assert not deny.reached and "denied by Azure Firewall" in deny.describe()
    reset = parse_curl("https://x", "curl: (35) OpenSSL SSL_connect: Connection reset by peer\n000")
    assert not reset.reached
    missing = parse_curl("https://x", "sh: 1: curl: not found")
    assert missing.unavailable and not missing.reached


def test_parse_services() -> None:
    items, why = parse_services('{"apiVersion": "v1", "items": [{"kind": "Service"}], "kind": "List"}')
    assert items == [{"kind": "Service"}] and why == ""
    items, why = parse_services("error: You must be logged in to the server (Unauthorized)")
    assert items is None and "no JSON" in why


def test_parse_nslookup() -> None:
    text = (
        "Server:\t\t10.41.0.10\nAddress:\t10.41.0.10#53\n\n"
        "Non-authoritative answer:\nName:\tmcr.microsoft.com\nAddress: 20.1.2.3\n"
    )
    found = parse_nslookup("mcr.microsoft.com", text)
    assert found.supported and found.resolved and found.server == "10.41.0.10"
    assert found.addresses == ("20.1.2.3",)
    failed = parse_nslookup("x", ";; connection timed out; no servers could be reached")
    assert failed.supported and not failed.resolved
    assert not parse_nslookup("x", "command not supported by the aks_lockdown emulator: nslookup").supported


def _report(*statuses: str) -> VerifyReport:
    now = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    checks = [
        Check(f"c.{i}", "routing", f"check {i}", "want | this", "got", s, message=f"finding {i}")  # type: ignore[arg-type]
        for i, s in enumerate(statuses)
    ]
    return VerifyReport("demo", "Azure (AzureCloud)", now, now, checks)


def test_statuses_and_exit_code() -> None:
    assert _report("pass", "warn", "skip").exit_code == 0
    failed = _report("pass", "fail")
    assert failed.exit_code == 1 and not failed
    assert [c.id for c in failed.failed()] == ["c.1"]
    assert failed.summary() == "verify demo: FAILED (1 passed, 1 failed)"


def test_renderings_name_every_check_and_the_findings() -> None:
    report = _report("pass", "fail", "warn")
    text = render_text(report)
    assert "FAIL c.1: finding 1" in text and "WARN c.2: finding 2" in text
    assert "finding 0" not in text  # a passing check has nothing to say
    md = render_markdown(report)
    assert "| check 1 (`c.1`) | routing | want \\| this | got | **FAIL** |" in md
    assert "- **Time:** 2026-11-24T15:00:00Z to 2026-11-24T15:00:00Z (UTC)" in md
    data = json.loads(json.dumps(report.to_json()))
    assert data["passed"] is False and data["counts"] == {"pass": 1, "fail": 1, "warn": 1, "skip": 0}


def test_emit_prefers_a_display_that_knows_reports() -> None:
    seen: list[Any] = []

    class Display:
        def verify_report(self, report: VerifyReport) -> None:
            seen.append(report)

        def note(self, message: str) -> None:  # pragma: no cover - must not be used
            raise AssertionError(message)

    report = _report("pass")
    emit(report, Display())
    assert seen == [report]

    class NoteOnly:
        def __init__(self) -> None:
            self.out = io.StringIO()

        def note(self, message: str) -> None:
            self.out.write(message)

    plain = NoteOnly()
    emit(report, plain)
    assert "verify demo: PASSED" in plain.out.getvalue()
