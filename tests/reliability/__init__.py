"""Reliability and security suite (issue 8): faults, bad input and hostile files; see docs/reliability.md.

A package, so that this folder's ``conftest.py`` is imported as ``reliability.conftest`` and does
not shadow ``tests/conftest.py`` (which the other test modules import as ``conftest``).
"""
