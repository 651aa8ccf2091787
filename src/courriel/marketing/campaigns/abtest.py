"""A/B tests: when the sample is done, wait, then pick the winner and hand it the rest.

Owns ``campaigns.test_ends_at`` and ``winner_variant_id``. The winner has the most unique
clicks (metric "clicks") or the most attributed revenue (metric "revenue") in
``campaign_stats``; a tie goes to the earliest label (A). Recipients of phase "rest" get
the winner's variant when their copy is sent; their count moves to the winner's
``recipients`` counter when it is picked.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from courriel.marketing.campaigns import stats
from courriel.marketing.campaigns.service import Campaign
from courriel.storage.models.campaigns import campaign_recipients, campaign_stats, campaigns

__all__ = ["pick_winner", "start_test"]


def start_test(conn: Connection, campaign: Campaign, now: datetime) -> None:
    """The sample is sent: wait ``ab.wait_seconds`` before picking (status 'testing')."""
    assert campaign.ab is not None
    ends = campaign.test_ends_at or now + timedelta(seconds=campaign.ab.wait_seconds)
    conn.execute(
        update(campaigns)
        .where(campaigns.c.id == campaign.id, campaigns.c.status == "sending")
        .values(status="testing", test_ends_at=ends, updated_at=now)
    )


def pick_winner(conn: Connection, campaign: Campaign, now: datetime) -> int:
    """Record the winning variant and count the rest of the audience for it; its id.

    Only a campaign still ``testing`` changes (to ``sending``); otherwise nothing is written.
    """
    assert campaign.ab is not None
    metric = campaign_stats.c.unique_clicks
    if campaign.ab.metric == "revenue":
        metric = campaign_stats.c.revenue_minor
    scores = dict(
        conn.execute(
            select(campaign_stats.c.variant_id, metric).where(
                campaign_stats.c.campaign_id == campaign.id
            )
        ).all()
    )
    winner = campaign.variants[0].id
    for variant in campaign.variants:  # by label: a tie keeps the earlier one
        if scores.get(variant.id, 0) > scores.get(winner, 0):
            winner = variant.id
    claimed = conn.execute(
        update(campaigns)
        .where(
            campaigns.c.id == campaign.id,
            campaigns.c.winner_variant_id.is_(None),
            # A campaign paused or cancelled since the step read it stays so.
            campaigns.c.status == "testing",
        )
        .values(winner_variant_id=winner, status="sending", updated_at=now)
    )
    if claimed.rowcount == 1:
        rest = conn.scalar(
            select(func.count()).where(
                campaign_recipients.c.campaign_id == campaign.id,
                campaign_recipients.c.phase == "rest",
            )
        )
        stats.bump(conn, campaign.id, winner, recipients=int(rest or 0))
    return winner
