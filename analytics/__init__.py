"""Analytics: usage queries, KPIs, rollups and the scheduled jobs that keep them."""
