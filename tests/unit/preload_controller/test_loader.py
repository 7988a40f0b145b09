"""The loader's exit codes and termination message, which the Job's podFailurePolicy and the
controller read."""

from __future__ import annotations

from pathlib import Path

from kaip.preload.copier import CopyReport
from kaip.preload.errors import AccessDenied, InsufficientCapacity, TargetFull, Throttled
from kaip.preload.status import parse_outcome
from kaip_incluster.loader.main import failure_of, main, outcome_of


def test_a_bad_source_exits_2_with_the_reason_in_the_termination_message(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    code = main(["--source=ftp://host/x", f"--target={tmp_path / 'vol'}", f"--termination-log={log}"])
    assert code == 2
    outcome = parse_outcome(log.read_text())
    assert outcome is not None and outcome.reason == "InvalidSource" and "ftp" in outcome.message


def test_refused_keys_fail_the_load_for_good_but_say_what_was_loaded() -> None:
    report = CopyReport(
        objects_copied=5, bytes_copied=50, refused=[("../escape", "leaves the target")], digest="sha256:1"
    )
    outcome, code = outcome_of(report)
    assert code == 3
    assert (
        outcome.reason == "UnsafeKeys"
        and "'../escape'" in outcome.message
        and "5 objects are loaded" in outcome.message
    )
    assert (outcome.objects, outcome.refused, outcome.digest) == (6, 1, "sha256:1")


def test_a_clean_copy_reports_counts_and_what_was_verified() -> None:
    report = CopyReport(
        objects_copied=2, objects_reused=1, bytes_copied=20, bytes_reused=10, verified={"crc32c": 2}
    )
    outcome, code = outcome_of(report)
    assert code == 0
    assert outcome.message.startswith(
        "3/3 objects, 30/30 bytes; 2 copied, 1 already there; verified crc32c: 2"
    )


def test_temporary_failures_exit_1_and_permanent_ones_3() -> None:
    assert failure_of(Throttled("s3://b/k: SlowDown"))[1] == 1
    outcome, code = failure_of(AccessDenied("s3://b/: access denied"))
    assert code == 3 and outcome.reason == "AccessDenied"
    outcome, code = failure_of(RuntimeError("secret=hunter2"))
    assert code == 1 and "hunter2" not in outcome.message


def test_a_volume_too_small_or_full_fails_for_good_with_its_own_reason() -> None:
    # Exit 3: the Job's podFailurePolicy fails the Job at once; the reason goes to the condition.
    outcome, code = failure_of(InsufficientCapacity("s3://b/p holds 3 MiB, more than 1 MiB"))
    assert (code, outcome.reason) == (3, "InsufficientCapacity") and "3 MiB" in outcome.message
    outcome, code = failure_of(TargetFull("no space left on the target volume (writing a)"))
    assert (code, outcome.reason) == (3, "TargetFull")
