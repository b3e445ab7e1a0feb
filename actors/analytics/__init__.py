"""Event analytics on the trio side: the event model, the append-only event log, the aggregators.

* :mod:`actors.analytics.events` - one model for both spellings of an event (visitor and product),
  validated into the :class:`~actors.analytics.events.Event` record the log stores;
* :mod:`actors.analytics.log` - the append-only log in the Store (group commit, idempotency);
* :mod:`actors.analytics.metrics` - the metrics aggregator actor (rolling one-minute buckets over
  48 h, rebuilt from the log on start) and the exact metric definitions;
* :mod:`actors.analytics.feed` - the live event feed (committed events pushed in batches).

Every view reads the same log: a reader rebuilds from :meth:`EventLog.since` on start and then
receives each committed batch (``Ingested`` / ``NewEvents``) from the ingest path.
"""

from actors.analytics.events import Event, EventError, EventIn, EventLimits, normalise
from actors.analytics.log import EventLog

__all__ = ["Event", "EventError", "EventIn", "EventLimits", "EventLog", "normalise"]
