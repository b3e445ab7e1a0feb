"""The event log every analytics view reads: one model, one append-only table, one seam.

* :mod:`actors.eventlog.events` - one wire model for both spellings of an event (visitor and
  product), validated into the :class:`~actors.eventlog.events.Event` record the log stores;
* :mod:`actors.eventlog.log` - the append-only log in the Store (group commit, idempotency);
* :mod:`actors.eventlog.views` - what the ingest path tells the views that follow the log, and
  the counters its answer carries.

A view rebuilds from :meth:`~actors.eventlog.log.EventLog.since` on start and is then told of
every committed batch before the ingest request is answered.
"""
