"""Throttles that hold for the whole cluster: "at most once per interval", claimed in Redis.

Every node computes the same views from the same log, so each would send the same throttled
update; one of them must, and only one per interval. A node that wants to act claims the name:
one Lua script compares the time of the last claim (service clock, as the node sends it) with
the interval and, when it has passed, records the new time, atomically. The winner acts for the
whole cluster; a loser learns when the winner claimed (to time its next attempt). The time is
the service clock's, not Redis's, so a test that advances the shared clock moves the throttle
too; the key's own expiry (the interval, in real time) only removes what can no longer refuse
anyone, since the service clock never runs slower than real time.

When Redis cannot be asked, the claim is granted (logged): a duplicate update is better than a
missing one.
"""

from __future__ import annotations

import logging

from actors.cluster.link import REDIS_ERRORS
from actors.cluster.signals import ClusterSignals

log = logging.getLogger("switchboard.cluster")

CLAIM = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then
  return {0, last}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return {1, ARGV[1]}
"""


class Claims:
    def __init__(self, signals: ClusterSignals) -> None:
        self.signals = signals
        self.granted = 0
        self.refused = 0
        self.unreachable = 0

    async def claim(self, name: str, now: float, interval_seconds: float) -> float | None:
        """None when this node won ``name`` for the interval starting ``now``; else the time
        (service clock) of the claim that holds it."""
        expiry_ms = max(1, int(interval_seconds * 1000) + 1000)
        try:
            won, at = await self.signals.client.eval(
                CLAIM,
                keys=[self.signals.key(f"claim#{name}")],
                args=[repr(now), repr(interval_seconds), expiry_ms],
            )
        except REDIS_ERRORS as err:
            self.unreachable += 1
            log.warning("cluster: claim %s not checked (%r): acting anyway", name, err)
            return None
        if int(won):
            self.granted += 1
            return None
        self.refused += 1
        return float(at)
