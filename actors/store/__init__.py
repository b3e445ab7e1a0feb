"""The Store: the one owner of the database (:mod:`actors.store.actor`), on SQLite by default
(:mod:`actors.store.sqlite`) or PostgreSQL (:mod:`actors.store.postgres`)."""

from actors.store.actor import ANSWER_GRACE_SECONDS, Read, Store, StoreStats, Write

__all__ = ["ANSWER_GRACE_SECONDS", "Read", "Store", "StoreStats", "Write"]
