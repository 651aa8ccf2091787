"""Fixtures of the campaign tracking tests: the webhook poster of the integration tests."""

from __future__ import annotations

from tests.integration.integrations.conftest import hooks

__all__ = ["hooks"]
