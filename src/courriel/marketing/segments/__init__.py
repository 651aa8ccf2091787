"""Segments: a JSON condition tree over contacts, compiled to one SQL query (docs/segments.md).

Owns: the tree (tree.py), its JSON form (parse.py), the SQL compiler (compile.py), the
reference evaluator the tests check the compiler with (reference.py), and saved segments
(service.py). Membership is computed when asked, never stored.
"""

from __future__ import annotations

from courriel.marketing.segments.compile import compile_segment, contact_ids_query
from courriel.marketing.segments.parse import parse_segment, to_json
from courriel.marketing.segments.service import Segment, count, members
from courriel.marketing.segments.tree import Node

__all__ = [
    "Node",
    "Segment",
    "compile_segment",
    "contact_ids_query",
    "count",
    "members",
    "parse_segment",
    "to_json",
]
