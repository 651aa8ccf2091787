"""Email templates: MJML or HTML with Jinja, compiled on save, rendered per recipient.

Modules: :mod:`.compile` (source → stored HTML, refused with line and column),
:mod:`.render` (:class:`.render.Renderer`, one per template, thread-safe),
:mod:`.env` (the Jinja sandbox and its limits), :mod:`.text` (the plain-text part),
:mod:`.sample` (trial-render and preview data), :mod:`.service` (the ``templates`` rows).
"""

from __future__ import annotations

from courriel.marketing.templates.compile import compile_template
from courriel.marketing.templates.render import RenderContext, RenderedEmail, Renderer
from courriel.marketing.templates.text import html_to_text

__all__ = ["RenderContext", "RenderedEmail", "Renderer", "compile_template", "html_to_text"]
