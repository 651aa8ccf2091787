"""Template sources shared by the template tests: a realistic MJML newsletter."""

from __future__ import annotations

__all__ = ["NEWSLETTER"]

# Six sections, three recommendations, personalised subject-worthy content.
NEWSLETTER = """<mjml>
  <mj-head>
    <mj-title>{{ shop.name }}</mj-title>
    <mj-font name="Raleway" href="https://fonts.googleapis.com/css?family=Raleway" />
    <mj-style>.promo { color: #c00; }
      @media (max-width: 480px) { .promo { font-size: 18px; } }</mj-style>
  </mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section><mj-column>
      <mj-image src="{{ shop.url }}/logo.png" alt="{{ shop.name }}" width="120px" />
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text font-family="Raleway" font-size="20px">
        Hello {{ contact.first_name | default("there") }},</mj-text>
      <mj-text css-class="promo">
        {% if contact.city %}News for {{ contact.city }}!{% else %}News!{% endif %}</mj-text>
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text>Our picks for you:
        {% for p in recommendations("best_sellers", 3) %}
        <p><a href="{{ p.url }}">{{ p.title }}</a> {{ p.price_minor | money }}</p>
        {% endfor %}
      </mj-text>
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-button href="{{ shop.url }}/sale">Shop the sale</mj-button>
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-raw><!-- {{ contact.email }} --></mj-raw>
      <mj-text>{{ data.note | default("") }}</mj-text>
    </mj-column></mj-section>
    <mj-section><mj-column>
      <mj-text font-size="11px">{{ shop.address }} -
        <a href="{{ unsubscribe_url }}">Unsubscribe</a> -
        <a href="{{ preferences_url }}">Preferences</a> -
        <a href="{{ view_in_browser_url }}">View in browser</a></mj-text>
    </mj-column></mj-section>
  </mj-body>
</mjml>
"""
