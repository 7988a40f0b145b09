"""Source URLs as users type them in --source and the annotation."""

from __future__ import annotations

import pytest

from kaip.errors import ExitCode
from kaip.preload.errors import InvalidSource
from kaip.storage.source import Source, parse_source


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://bucket/data", Source("s3", "bucket", "data/")),
        ("s3://bucket/data/", Source("s3", "bucket", "data/")),
        ("gs://my.bucket/a/b", Source("gs", "my.bucket", "a/b/")),
        ("S3://bucket", Source("s3", "bucket", "")),
        ("gs://bucket/", Source("gs", "bucket", "")),
    ],
)
def test_a_prefix_is_a_directory(url: str, expected: Source) -> None:
    assert parse_source(url) == expected


def test_data_a_never_matches_data_ab() -> None:
    assert not "data/ab/x".startswith(parse_source("s3://bucket/data/a").prefix)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("bucket/data", "no scheme"),
        ("http://bucket/data", "unknown scheme 'http'"),
        ("s3:///data", "no bucket"),
        ("s3://b/data", "'b' is not a valid bucket name"),
        ("gs://bucket/da\x00ta", "control characters"),
    ],
)
def test_bad_sources_name_the_field_and_the_problem(url: str, why: str) -> None:
    with pytest.raises(InvalidSource) as info:
        parse_source(url, field="--source")
    assert str(info.value).startswith("--source: ")
    assert why in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.reason == "InvalidSource"
