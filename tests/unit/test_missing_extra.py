"""`needs_extra`: a missing third-party module becomes one line naming the `pip install`; a missing
module of our own stays the bug it is. (tests/integration/test_without_extras.py runs the programs.)"""

from __future__ import annotations

import pytest

from kaip.errors import ExitCode, KaipError, MissingExtra, needs_extra


def test_a_missing_module_names_the_pip_command() -> None:
    with pytest.raises(MissingExtra) as caught, needs_extra("s3", purpose="reading s3://"):
        import kaip_no_such_sdk.client  # noqa: F401
    assert isinstance(caught.value, KaipError)
    assert caught.value.exit_code == ExitCode.MISSING_EXTRA == 11
    assert str(caught.value) == (
        "reading s3:// needs kaip_no_such_sdk, which is not installed: pip install 'kaip[s3]'"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_missing_module_of_our_own_is_not_an_extra() -> None:
    with pytest.raises(ModuleNotFoundError), needs_extra("s3", purpose="reading s3://"):
        import kaip.no_such_module  # noqa: F401


def test_other_errors_pass_through() -> None:
    with pytest.raises(ValueError, match="boom"), needs_extra("gcs", purpose="reading gs://"):
        raise ValueError("boom")
