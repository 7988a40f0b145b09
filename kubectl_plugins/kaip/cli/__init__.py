"""Shared click plumbing of every plugin: kubectl's flags, output formats, errors to exit codes.

Rule: defined once here, used by every command; only this package and ``kaip.commands`` print or exit.
"""
