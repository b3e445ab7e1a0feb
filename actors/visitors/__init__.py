"""Visitor analytics: sessions and journeys from the event log, live counters, the raw feed.

* :mod:`actors.visitors.model` - the state (sessions, today's counters, per-minute visitors) and
  every view of it (summary, sessions, detailed stats), pure and synchronous;
* :mod:`actors.visitors.aggregator` - the session aggregator actor that owns that state and the
  connected feed dashboards;
* :mod:`actors.visitors.feed` - a feed dashboard's bounded outbox and every feed message;
* :mod:`actors.visitors.actions` - the dashboard actions table (``track_dashboard_action``).
"""
