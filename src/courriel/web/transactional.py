"""The settings a transactional message sent from the web is built with.

Owns :func:`transactional_settings`, the one place that turns the app's
:class:`~courriel.web.app.WebServices` into the
:class:`~courriel.marketing.campaigns.transactional.Settings` of a send: tracking links
under ``http.public_url``, the VERP key, ``shop.*``, ``tracking.open_pixel`` and the
Feedback-ID sender. ``POST /api/v1/messages`` and the dashboard's test send both call it,
so a test send is built exactly like a message sent through the API.

The VERP key is the cluster's shared secret ``verp`` (the one the feedback processor
verifies). It is read from the database once per app and kept in the app's state: the
secret is created once and never rotated while the app runs.
"""

from __future__ import annotations

from litestar import Litestar

from courriel.marketing.campaigns.feedback import VERP_KEY_NAME
from courriel.marketing.campaigns.tokens import Links
from courriel.marketing.campaigns.transactional import Settings
from courriel.storage.secrets import shared_secret
from courriel.web.app import WebServices

__all__ = ["transactional_settings"]

_VERP_STATE_KEY = "courriel.messages.verp"  # app.state key of the cached VERP secret


async def transactional_settings(app: Litestar, services: WebServices) -> Settings:
    """What a transactional send from this app is built with (the VERP key cached)."""
    verp = app.state.get(_VERP_STATE_KEY)
    if not isinstance(verp, bytes):
        verp = await shared_secret(services.db, VERP_KEY_NAME)
        app.state[_VERP_STATE_KEY] = verp
    return Settings(
        links=Links(services.links, services.public_url),
        verp_key=verp,
        shop=services.template_shop,
        open_pixel=services.open_pixel,
        feedback_sender=services.feedback_sender,
    )
