"""Clients the tests drive servers with: raw sockets, python-socketio, and each application's
REST and Socket.IO helpers."""
