"""Fixtures of the credentials unit tests."""

from __future__ import annotations

from credentials_samples import ec_pem, key_file, rsa_pem

__all__ = ["ec_pem", "key_file", "rsa_pem"]
