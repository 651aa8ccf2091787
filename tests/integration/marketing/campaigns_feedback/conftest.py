"""Fixtures of the feedback tests: the loopback receivers and smtplib connector of delivery."""

from __future__ import annotations

from tests.integration.delivery.conftest import make_connector, receivers

__all__ = ["make_connector", "receivers"]
