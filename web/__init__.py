"""The front door: entry points (``cli``, ``server``, ``asgi``, ``front_door``) over the
platform (:mod:`web.platform`), the socket transports (:mod:`web.sockets`) and one package per
application (:mod:`web.apps`)."""
