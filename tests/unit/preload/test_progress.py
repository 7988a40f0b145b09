"""The DataLoaded progress message: one format written by the loader and read by the plugin."""

from __future__ import annotations

from kaip.preload.progress import eta, human_bytes
from kaip.preload.status import Progress, format_message, note_of, parse_message


def test_message_round_trips_with_and_without_a_note() -> None:
    p = Progress(objects_done=120, objects_total=300, bytes_done=5_000_000, bytes_total=40_000_000_000)
    assert format_message(p) == "120/300 objects, 5000000/40000000000 bytes"
    assert parse_message(format_message(p)) == p
    text = format_message(p, note="310 MiB/s, 2 retries")
    assert parse_message(text) == p
    assert note_of(text) == "310 MiB/s, 2 retries"


def test_messages_without_progress_read_as_none() -> None:
    assert parse_message("access denied to s3://b/x/") is None
    assert parse_message(None) is None
    assert parse_message("1/2 objects") is None


def test_fraction_is_by_bytes_then_objects() -> None:
    assert Progress(1, 4, 50, 200).fraction == 0.25
    assert Progress(1, 4, 0, 0).fraction == 0.25
    assert Progress(0, 0, 0, 0).fraction == 1.0


def test_eta_from_observed_rate() -> None:
    assert eta([(0.0, 0), (10.0, 100)], 1000) == 90.0
    assert eta([(0.0, 0)], 1000) is None
    assert eta([(0.0, 100), (5.0, 100)], 1000) is None


def test_human_bytes() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(40 * 1024**3) == "40.0 GiB"
