"""Product recommendations as template data: ``recommendations(kind, n)`` (issue 6 §2).

Kinds: ``best_sellers``, ``recently_viewed``, ``bought_together``, ``same_category``
(docs/recommendations.md says what each one picks). ``rank`` holds the rules shared by
every kind, ``queries`` the SQL, ``service`` the entry points re-exported here.
"""

from __future__ import annotations

from courriel.marketing.recommend.rank import KINDS, MAX_N
from courriel.marketing.recommend.service import (
    ALL_CALLS,
    Recommend,
    RecommendationBook,
    Recommender,
    prefetch,
    recommend,
)

__all__ = [
    "ALL_CALLS",
    "KINDS",
    "MAX_N",
    "Recommend",
    "RecommendationBook",
    "Recommender",
    "prefetch",
    "recommend",
]
