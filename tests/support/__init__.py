"""What the test suites share. The fixtures and hooks are in tests/conftest.py; this package
holds what they and the tests are made of:

* ``tokens`` - every JWT secret a test server is started with, and the token factories.
* ``processes`` - servers as subprocesses (``ServerProcess``, ``ProductServer`` with its test
  clock, ``interop``), pools that stop them, ports, and Node clients (``node_client``).
* ``servers/`` - the server programs those processes run (interop, conformance, product).
* ``clients/`` - raw Engine.IO/Socket.IO clients (``raw``), what a server reports
  (``status``), the interop targets, python-socketio scenarios (``scenarios``), and each
  application's client helpers (``chat``, ``guild``, ``analytics``, ``visitors``).
* ``waiting`` - ``wait_until`` and friends: a condition polled with a timeout, never a sleep.
* ``tcp_table`` - the kernel's view of a test's connection; ``stamps`` - wire timestamps.
"""
