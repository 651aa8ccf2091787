-- The least work of bench/segments.py's PostgreSQL segments 3, 4 and 5 (docs/performance.md,
-- "Fifth pass"), on the seeded bench database, with the settings a segment read uses:
--   psql -h 127.0.0.1 -U postgres -d courriel_bench_segments -X -f bench/segments_floor.sql
-- Run it a few times and take the median of each line's "Time:".
SET work_mem = '64MB';
SET max_parallel_workers_per_gather = 0;
SET jit = off;
\timing on
-- every contact, and every contact's status (segment 5 tested from the contacts' side)
SELECT count(*) FROM contacts;
SELECT count(*) FROM contacts WHERE email_status = 'subscribed';
SELECT count(*) FROM contacts WHERE email_status <> 'unsubscribed';
-- segment 4: the distinct buyers of cat-3 in 90 days
SELECT count(DISTINCT coalesce(order_lines.contact_id, 0)) FROM order_lines
WHERE order_lines.product_id IN (SELECT product_id FROM product_categories WHERE category = 'cat-3')
  AND order_lines.status <> 'cancelled' AND order_lines.placed_at >= '2026-08-03 00:00:00+00';
-- segment 5: the opened / clicked / vip ids, read, then deduplicated
SELECT count(*) FROM (
  SELECT contact_id FROM events WHERE name = 'Opened Email' AND occurred_at >= '2026-10-02 00:00:00+00'
  UNION ALL SELECT contact_id FROM events WHERE name = 'Clicked Email' AND occurred_at >= '2026-08-03 00:00:00+00'
  UNION ALL SELECT contact_id FROM contact_tags WHERE tag = 'vip') u;
SELECT count(*) FROM (SELECT DISTINCT contact_id FROM (
  SELECT contact_id FROM events WHERE name = 'Opened Email' AND occurred_at >= '2026-10-02 00:00:00+00'
  UNION ALL SELECT contact_id FROM events WHERE name = 'Clicked Email' AND occurred_at >= '2026-08-03 00:00:00+00'
  UNION ALL SELECT contact_id FROM contact_tags WHERE tag = 'vip') u) d;
-- segment 3: the Viewed Product events of 30 days, read, then grouped with HAVING
SELECT count(*) FROM events WHERE name = 'Viewed Product' AND occurred_at >= '2026-10-02 00:00:00+00';
SELECT count(*) FROM (SELECT contact_id FROM events
  WHERE name = 'Viewed Product' AND occurred_at >= '2026-10-02 00:00:00+00'
  GROUP BY contact_id HAVING count(*) >= 3) g;
