"""``kaip-loader``: copy the source into the mounted volume, report progress and the outcome.

Progress goes to the PVC's ``DataLoaded`` condition (Unknown, reason ``Loading``, message
``N/M objects, X/Y bytes``) at most every ``--progress-interval`` seconds; a failure to report
progress never fails the load. The outcome goes to ``--termination-log`` and the exit code.

With ``--shards N`` the loader is Pod ``JOB_COMPLETION_INDEX`` of an Indexed Job: it copies only the
keys of its shard and writes its progress into its own condition ``DataLoadedShard<i>``, which the
controller adds up (:mod:`kaip.preload.shards`).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kaip.errors import KaipError, shorten
from kaip.kube.objects import api_time
from kaip.preload import jobs
from kaip.preload.copier import CopyOptions, CopyReport, copy
from kaip.preload.errors import InvalidSource, UnsafeKeys, condition_reason
from kaip.preload.shards import INDEX_ENV, Shard
from kaip.preload.status import TRUE, UNKNOWN, Condition, Outcome, Progress, format_message, status_patch
from kaip.resources import kinds
from kaip.resources.preload import CONDITION_LOADED, REASON_LOADING, REASON_SUCCEEDED
from kaip.storage import checksums
from kaip.storage.source import parse_source

if TYPE_CHECKING:
    from kaip.kube.client import Kube


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kaip-loader", description=__doc__)
    parser.add_argument("--source", required=True, help="s3://bucket/prefix or gs://bucket/prefix")
    parser.add_argument("--target", required=True, help="directory to fill (inside the mounted volume)")
    parser.add_argument("--pvc", default="", help="PVC whose DataLoaded condition gets the progress")
    parser.add_argument("--namespace", default=os.environ.get("POD_NAMESPACE", ""))
    parser.add_argument("--termination-log", default=jobs.TERMINATION_LOG)
    parser.add_argument("--anonymous", action="store_true", help="no credentials (public bucket)")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--progress-interval", type=float, default=2.0)
    parser.add_argument(
        "--check-hashes",
        choices=checksums.CHECK_HASHES,
        default=checksums.DEFAULT_CHECK,
        help="which published checksums are computed (fast: the CRCs only)",
    )
    parser.add_argument(
        "--capacity",
        type=int,
        default=None,
        help="the PVC's capacity in bytes (the controller passes it); checked with the file system's "
        "size and free space before copying",
    )
    parser.add_argument("--shards", type=int, default=1, help="shards of an Indexed Job (1: no sharding)")
    parser.add_argument(
        "--shard-index",
        type=int,
        default=int(os.environ.get(INDEX_ENV) or 0),
        help=f"this Pod's shard (default: ${INDEX_ENV}, set by the Job controller)",
    )
    return parser.parse_args(list(argv))


class ProgressReporter:
    """Writes the progress message into the PVC's condition, rate-limited, never raising."""

    def __init__(
        self,
        kube: Kube | None,
        *,
        pvc: str,
        namespace: str,
        interval: float,
        condition: str = CONDITION_LOADED,
    ) -> None:
        self.kube, self.pvc, self.namespace, self.interval = kube, pvc, namespace, interval
        self.condition = condition
        self._last = 0.0
        self._lock = threading.Lock()
        self._warned = False

    def __call__(self, progress: Progress, *, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < self.interval:
                return
            self._last = now
        self.write(format_message(progress))

    def write(self, message: str, *, status: str = UNKNOWN, reason: str = REASON_LOADING) -> None:
        if self.kube is None or not self.pvc:
            return
        patch = status_patch(
            Condition(status, reason, message),
            now=api_time(),
            transition=False,
            type_=self.condition,
        )
        try:
            self.kube.patch(
                kinds.PVCS,
                self.pvc,
                patch,
                namespace=self.namespace,
                kind="strategic",
                subresource="status",
                field_manager="kaip-loader",
            )
        except KaipError as exc:
            if not self._warned:
                self._warned = True
                print(f"kaip-loader: progress not reported: {exc.message}", file=sys.stderr)


def _connect(namespace: str) -> Kube | None:
    from kaip.kube import connect
    from kaip.kube.config import ClusterTarget

    try:
        return connect(ClusterTarget(namespace=namespace or None))
    except KaipError as exc:
        print(f"kaip-loader: no API access, progress not reported: {exc.message}", file=sys.stderr)
        return None


def outcome_of(report: CopyReport) -> tuple[Outcome, int]:
    """The outcome and exit code of a finished copy (refused keys fail it, the rest stays loaded)."""
    size = report.bytes_copied + report.bytes_reused
    done = report.objects_total
    if report.refused:
        reason, code = UnsafeKeys.reason, jobs.EXIT_PERMANENT
        message = UnsafeKeys.of(report.refused).message + f"; the other {done} objects are loaded"
    else:
        reason, code = REASON_SUCCEEDED, jobs.EXIT_OK
        message = format_message(
            Progress(done, done, size, size),
            note=f"{report.objects_copied} copied, {report.objects_reused} already there; "
            f"verified {report.verification()}",
        )
    outcome = Outcome(
        reason=reason,
        message=message,
        digest=report.digest,
        objects=done + len(report.refused),
        bytes=size,
        copied=report.objects_copied,
        reused=report.objects_reused,
        refused=len(report.refused),
    )
    return outcome, code


def failure_of(exc: BaseException) -> tuple[Outcome, int]:
    """The outcome and exit code of a failed copy; the reason is :func:`condition_reason`'s."""
    if isinstance(exc, KaipError):
        code = jobs.EXIT_TEMPORARY if exc.temporary else jobs.EXIT_PERMANENT
        return Outcome(reason=condition_reason(exc), message=shorten(exc.message, 1000)), code
    # Not ours: name the type only; a library's text could hold anything.
    return Outcome(
        reason=condition_reason(exc), message=f"unexpected {type(exc).__name__} in the loader"
    ), jobs.EXIT_TEMPORARY


def _write_termination(path: str, outcome: Outcome) -> None:
    try:
        Path(path).write_text(outcome.to_json())
    except OSError as exc:
        print(f"kaip-loader: cannot write {path}: {exc.strerror}", file=sys.stderr)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    try:
        source = parse_source(args.source, field="--source")
    except InvalidSource as exc:
        outcome = Outcome(reason=condition_reason(exc), message=exc.message)
        _write_termination(args.termination_log, outcome)
        print(f"kaip-loader: {exc.message}", file=sys.stderr)
        return jobs.EXIT_USAGE
    shard = Shard(args.shard_index, args.shards) if args.shards > 1 else None
    if shard is not None and not 0 <= shard.index < shard.count:
        message = f"--shard-index {shard.index} is not one of the {shard.count} shards"
        _write_termination(args.termination_log, Outcome(reason=InvalidSource.reason, message=message))
        print(f"kaip-loader: {message}", file=sys.stderr)
        return jobs.EXIT_USAGE
    reporter = ProgressReporter(
        _connect(args.namespace) if args.pvc else None,
        pvc=args.pvc,
        namespace=args.namespace,
        interval=args.progress_interval,
        condition=shard.condition_type if shard else CONDITION_LOADED,
    )
    options = CopyOptions(
        anonymous=args.anonymous,
        workers=args.workers,
        capacity=args.capacity,
        shard=shard,
        check_hashes=args.check_hashes,
    )
    last: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        last[:] = [progress]
        reporter(progress)

    try:
        report = copy(source, Path(args.target), options=options, on_progress=on_progress)
    except Exception as exc:
        outcome, code = failure_of(exc)
    else:
        if last:
            reporter(last[0], force=True)
        outcome, code = outcome_of(report)
        if shard is not None and code == jobs.EXIT_OK:
            reporter.write(outcome.message, status=TRUE, reason=REASON_SUCCEEDED)  # this share is done
    _write_termination(args.termination_log, outcome)
    stream = sys.stdout if code == jobs.EXIT_OK else sys.stderr
    print(f"kaip-loader: {outcome.reason}: {outcome.message}", file=stream)
    return code
