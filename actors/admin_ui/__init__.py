"""The Socket.IO Admin UI's server side, below the web layer: its wire format and its monitor."""
