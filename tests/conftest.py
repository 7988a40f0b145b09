"""Shared test configuration; the fixtures of the real servers live in kaip_testbed.pytest_plugin."""
