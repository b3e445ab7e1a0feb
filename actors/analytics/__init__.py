"""The metrics dashboard and live metrics on the trio side: the aggregator and the live feed.

* :mod:`actors.analytics.metrics` - the metrics aggregator actor (rolling one-minute buckets over
  48 h, rebuilt from the event log on start) and the exact metric definitions;
* :mod:`actors.analytics.feed` - the live event feed (committed events pushed in batches).

Both read the shared event log (:mod:`actors.eventlog`).
"""
