"""Socket.IO across nodes on Redis, in the format of Node's ``@socket.io/redis-adapter``.

* :mod:`actors.cluster.config` - who this node is (its tag, advertised address) and the limits;
* :mod:`actors.cluster.registry` - the nodes alive, each holding a lease in Redis;
* :mod:`actors.cluster.link` - the Redis connections: the publisher queue and the supervised
  subscriber (reconnect with backoff and jitter, a probe to itself that restarts a wedged one);
* :mod:`actors.cluster.answers` - what this node answers to the other nodes' requests;
* :mod:`actors.cluster.broker` - the :class:`~actors.sockets.broker.Broker` of a cluster node:
  broadcasts and operations on sockets reach every node.
"""
