"""The template engine (marketing.templates) behind the sender's ``CopyRenderer`` port.

Owns nothing but the mapping: a variant's compiled template is one
:class:`~courriel.marketing.templates.render.Renderer`, and each recipient's
:class:`RenderInput` becomes its :class:`RenderContext` (contact, shop, the copy's links,
recommendations). Rendering errors propagate as the template engine raises them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from courriel.marketing.campaigns.copies import CopyRenderer, RendererFactory, RenderInput
from courriel.marketing.campaigns.message import Content
from courriel.marketing.templates.render import RenderContext, Renderer

__all__ = ["TemplateCopyRenderer", "renderer_factory"]


class TemplateCopyRenderer:
    """One variant's template, rendered per recipient."""

    def __init__(
        self, html: str, subject: str, preheader: str | None, shop: Mapping[str, Any]
    ) -> None:
        self._renderer = Renderer(html, subject, preheader)
        self._shop = dict(shop)

    @property
    def recommendation_calls(self) -> frozenset[tuple[str, int]]:
        """The recommendations the template asks for."""
        return self._renderer.recommendation_calls

    def render(self, data: RenderInput) -> Content:
        """Subject, HTML and text of one copy."""
        rendered = self._renderer.render(
            RenderContext(
                contact=data.contact,
                shop=self._shop,
                unsubscribe_url=data.urls.unsubscribe,
                preferences_url=data.urls.preferences,
                view_in_browser_url=data.urls.view,
                recommendations=data.recommendations,
            )
        )
        return Content(subject=rendered.subject, html=rendered.html, text=rendered.text)


def renderer_factory(shop: Mapping[str, Any]) -> RendererFactory:
    """A factory of renderers for the sender (``shop``: name, url, address, currency)."""

    def make(html: str, subject: str, preheader: str | None) -> CopyRenderer:
        return TemplateCopyRenderer(html, subject, preheader, shop)

    return make
