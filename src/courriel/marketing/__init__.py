"""The marketing engine: contacts, consent, lists, suppression, shop data, segments.

Layering: marketing sits beside ``delivery`` and ``mailstore`` and never imports them;
mail leaves through the :class:`courriel.marketing.ports.Mailer` port, which the
composition root implements over the delivery queue.

Modules of the contacts core (connection-level functions run inside the caller's
transaction; see each module's docstring for its invariants):

- :mod:`~courriel.marketing.types`: boundary dataclasses (ContactData, Contact, ConsentChange…).
- :mod:`~courriel.marketing.normalise`: normal forms of email, phone (E.164), country, time zone.
- :mod:`~courriel.marketing.contacts`: upsert (merge, never remove), read, search, delete.
- :mod:`~courriel.marketing.consent`: per-channel consent with append-only proof.
- :mod:`~courriel.marketing.lists`: lists, memberships, double opt-in (confirmation mail, link).
- :mod:`~courriel.marketing.links`: purpose-bound, expiring HMAC tokens for links in mail.
- :mod:`~courriel.marketing.suppression`: address, domain and address-hash suppression.
- :mod:`~courriel.marketing.gdpr`: export everything about a person; forget them.
- :mod:`~courriel.marketing.csvio` / :mod:`~courriel.marketing.csvexport`: CSV import and export.
"""
