"""Every setting in one table: name, type, default, and what it is for.

Each field is also a command-line flag (``--max-outbox-bytes``), an environment variable
(``SWITCHBOARD_MAX_OUTBOX_BYTES``) and a key of the optional TOML file given with ``--config``
(``max_outbox_bytes = 4194304``). Precedence: flag, then environment, then file, then default.
The README's configuration table is generated from this table (``python -m web.platform.settings``).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from web.sockets.proxies import parse_networks

ENV_PREFIX = "SWITCHBOARD_"


def setting(
    default: Any,
    help: str,
    *,
    secret: bool = False,
    positive: bool = False,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
) -> Any:
    """One setting: its default, its help text, and the bounds :func:`validate` enforces (every
    number must not be negative; ``positive`` ones must be above 0)."""
    rules = {"help": help, "secret": secret, "positive": positive, "maximum": maximum}
    rules["choices"] = choices
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=rules)
    return field(default=default, metadata=rules)


@dataclass
class Settings:
    # --- listener ---------------------------------------------------------------------------
    host: str = setting("127.0.0.1", "Interface to listen on.")
    port: int = setting(8000, "TCP port for HTTP, long-polling and WebSocket (one port).")
    data_dir: str = setting("./data", "Folder for the SQLite database and the generated JWT key.")
    engineio_path: str = setting("/socket.io/", "Path of the Engine.IO endpoint.")
    http_head_timeout_seconds: float = setting(
        10.0, "A connection must send its request head within this, or it is closed."
    )
    max_http_head_bytes: int = setting(16384, "Largest request line plus headers accepted.")
    socket_send_buffer_bytes: int = setting(
        0,
        "Kernel send buffer of each accepted socket (0: the OS default, which grows to megabytes). "
        "A small one makes max_outbox_bytes bite sooner for clients that stop reading.",
    )
    native_websocket: bool = setting(
        True, "Serve WebSocket upgrades on the native trio path (false: ASGI route only)."
    )
    # --- identity ---------------------------------------------------------------------------
    jwt_secret: str = setting(
        "", "HS256 secret; empty: generated once and kept in DATA_DIR/jwt-secret.", secret=True
    )
    jwt_issuer: str = setting("", "Required `iss` claim when set.")
    jwt_audience: str = setting("", "Required `aud` claim when set.")
    token_ttl_seconds: int = setting(86400, "Lifetime of tokens printed by `serve`/`token`.")
    # --- browsers ---------------------------------------------------------------------------
    cors_origins: list[str] = setting(
        [],
        "Origins allowed cross-origin (comma-separated, or *). Same-origin and clients that send "
        "no Origin are always allowed; other origins are refused on polling and WebSocket.",
    )
    # --- Engine.IO ----------------------------------------------------------------------------
    ping_interval_ms: int = setting(
        25000, "Server PING every this many milliseconds.", positive=True
    )
    ping_timeout_ms: int = setting(
        60000, "Close when no PONG arrives within this after a PING.", positive=True
    )
    connect_timeout_ms: int = setting(
        45000, "Close an Engine.IO connection that joins no namespace within this.", positive=True
    )
    max_http_buffer_size_bytes: int = setting(
        1_000_000,
        "Largest polling POST body or WebSocket message accepted (maxPayload).",
        positive=True,
    )
    max_packets_per_payload: int = setting(
        1000, "Most packets accepted in one polling POST.", positive=True
    )
    max_connections_per_ip: int = setting(
        1000,
        "Engine.IO sessions one client address may hold open at once; past it a new handshake "
        "gets 403 (0: no limit). Behind a reverse proxy, list it in trusted_proxies.",
    )
    trusted_proxies: list[str] = setting(
        [],
        "Reverse proxies (addresses or CIDR networks, comma-separated) whose X-Forwarded-For "
        "names the client; per-address limits then count clients, not the proxy. Empty: the "
        "header is never believed.",
    )
    allow_eio3: bool = setting(
        True,
        "Also serve Engine.IO v3 / Socket.IO v2 clients (socket.io-client 2.x); serving them "
        "costs nothing for newer clients.",
    )
    socketio_parser: str = setting(
        "auto",
        "auto: each client's first packet tells its parser (JSON, or socket.io-msgpack-parser); "
        "json or msgpack: one parser for every client, as Node's and python-socketio's servers.",
        choices=("auto", "json", "msgpack"),
    )
    connection_state_recovery: bool = setting(
        False,
        "Socket.IO connection state recovery: a client that loses its connection gets back its "
        "id, rooms and missed broadcasts (off by default: it appends an offset argument to "
        "every broadcast, as Node's server does).",
    )
    recovery_max_disconnection_seconds: float = setting(
        120.0,
        "How long a disconnected session and the broadcasts it may miss are kept.",
        positive=True,
    )
    recovery_skip_middlewares: bool = setting(
        True,
        "A recovered client skips the connect middleware (its token must still name the "
        "session's user).",
    )
    max_outbox_bytes: int = setting(
        4_194_304,
        "Bytes queued for one client beyond what its socket accepts; past it a volatile packet "
        "is dropped and otherwise the client is disconnected as a slow consumer.",
        positive=True,
    )
    max_json_depth: int = setting(
        32, "Deepest nesting of arrays/objects accepted in a packet.", positive=True
    )
    # --- cluster ------------------------------------------------------------------------------
    redis_url: str = setting(
        "",
        "Redis that joins this node to a cluster (redis://host:port/db); empty: a single node.",
        secret=True,
    )
    node_id: str = setting("", "This node's name in logs and /health; empty: host-pid.")
    advertise_url: str = setting(
        "",
        "How the other nodes reach this one (polling requests and upgrades for its sessions are "
        "forwarded there); empty: http://HOST:PORT (the machine's address when HOST is 0.0.0.0).",
    )
    redis_key_prefix: str = setting(
        "socket.io", "Prefix of the cluster's Redis channels and keys (the Node adapter's `key`)."
    )
    workers: int = setting(
        1,
        "Processes serving the one port (SO_REUSEPORT), joined through Redis like separate "
        "machines; more than 1 needs redis_url.",
        positive=True,
    )
    cluster_request_timeout_seconds: float = setting(
        5.0, "Longest wait for the other nodes' answers (fetch sockets, acks...).", positive=True
    )
    cluster_node_lease_seconds: float = setting(
        10.0,
        "A node that stops renewing its lease is taken for dead after this long.",
        positive=True,
    )
    cluster_probe_interval_seconds: float = setting(
        2.0,
        "How often a node sends itself a probe through Redis; three missed and its subscription "
        "is restarted.",
        positive=True,
    )
    cluster_log_poll_seconds: float = setting(
        1.0,
        "How often a node reads the event logs for rows committed by other nodes when no wake-up "
        "came through Redis (a node that died between its commit and its wake-up).",
        positive=True,
    )
    # --- Socket.IO Admin UI ----------------------------------------------------------------------
    admin_ui: bool = setting(
        False,
        "Serve the Socket.IO Admin UI: its namespace (admin_ui_namespace) and its pinned build "
        "at /admin/. Sign in with an admin JWT, or with admin_ui_username and its password.",
    )
    admin_ui_namespace: str = setting("/admin", "The Admin UI's Socket.IO namespace.")
    admin_ui_username: str = setting(
        "", "User name of the UI's sign-in form (with admin_ui_password_hash); empty: JWT only."
    )
    admin_ui_password_hash: str = setting(
        "",
        "bcrypt hash of that user's password (`switchboard hash-password` makes one).",
        secret=True,
    )
    admin_ui_mode: str = setting(
        "development",
        "development: the UI sees every socket, room and received event live; production: "
        "server figures only (no per-socket traffic for busy servers).",
        choices=("development", "production"),
    )
    admin_ui_readonly: bool = setting(
        False, "The UI may look but not act (no emit, join, leave or disconnect)."
    )
    admin_ui_stats_interval_seconds: float = setting(
        2.0, "Each node sends the UI its server figures this often.", positive=True
    )
    admin_ui_session_seconds: int = setting(
        86400, "A signed-in UI stays signed in (across reloads) this long.", positive=True
    )
    admin_ui_login_attempts_per_minute: int = setting(
        10, "Sign-in attempts with a password allowed per client address per minute (0: no limit)."
    )
    admin_ui_max_queued_events: int = setting(
        1024,
        "UI events queued for publishing; beyond it they are dropped (counted), never waited on.",
        positive=True,
    )
    # --- actors -------------------------------------------------------------------------------
    room_idle_seconds: float = setting(30.0, "An empty room's actor stops after this long.")
    room_mailbox_size: int = setting(
        256, "Messages a room actor queues before senders wait.", positive=True
    )
    max_rooms_per_socket: int = setting(
        1000,
        "Rooms one socket may be in at once (its own sid room not counted); a join past it is "
        "refused with an error naming this setting.",
        positive=True,
    )
    # --- storage ------------------------------------------------------------------------------
    database_url: str = setting(
        "",
        "PostgreSQL for the durable data (postgresql://user:password@host:port/db); empty: "
        "SQLite in the data folder. Every node of a cluster (redis_url, workers > 1) needs it.",
        secret=True,
    )
    store_read_pool_size: int = setting(
        4, "PostgreSQL connections the Store reads on (its one writer comes on top).", positive=True
    )
    store_max_batch: int = setting(
        1024, "Most writes committed in one transaction (group commit).", positive=True
    )
    store_synchronous: str = setting(
        "NORMAL",
        "SQLite synchronous mode: NORMAL survives a killed process; FULL also a power loss.",
        choices=("OFF", "NORMAL", "FULL", "EXTRA"),
    )
    store_write_timeout_seconds: float = setting(
        5.0,
        "Longest a write waits for the database (a lock held by another process is retried "
        "this long); then it is answered as not stored. Disk full, read-only and corrupt "
        "databases fail at once.",
        positive=True,
    )
    # --- analytics ----------------------------------------------------------------------------
    ingest_max_batch_events: int = setting(
        1000, "Most events in one POST /api/events/batch.", positive=True
    )
    ingest_max_body_bytes: int = setting(
        1_048_576, "Largest ingest request body in bytes (413 beyond).", positive=True
    )
    ingest_max_string_chars: int = setting(
        1024,
        "Longest string field of an event (id, eventName/type, userId, session_id, page, "
        "country, device, referrer), an Idempotency-Key and a dashboard id.",
        positive=True,
    )
    ingest_max_future_seconds: float = setting(
        300.0, "Refuse events stamped more than this many seconds ahead of the server clock."
    )
    ingest_max_past_seconds: float = setting(
        604_800.0, "Refuse events stamped more than this many seconds ago (default 7 days)."
    )
    ingest_rate_per_ip_per_minute: int = setting(
        1200, "Ingest requests accepted per client IP per minute (429 beyond); 0: no limit."
    )
    anonymous_dashboards: bool = setting(
        False,
        "Let dashboards in without a JWT (/ws/metrics, GET /api/metrics/*, the visitor reads "
        "and /ws/visitors); a token that is given must still be valid.",
    )
    dashboard_push_interval_seconds: float = setting(
        5.0,
        "`dashboard_data` goes to every /ws/metrics client this often (seconds).",
        positive=True,
    )
    events_batch_interval_ms: int = setting(
        250,
        "Committed events are pushed as `events` at most this often (milliseconds).",
        positive=True,
    )
    events_max_per_push: int = setting(1000, "Most events in one `events` packet.", positive=True)
    live_metrics_interval_seconds: float = setting(
        5.0,
        "`analytics:liveMetrics` goes to subscribers and dashboard rooms this often.",
        positive=True,
    )
    conversion_events: list[str] = setting(
        ["purchase", "signup"], "Event names that count as conversions (comma-separated)."
    )
    uptime_mark_interval_seconds: float = setting(
        10.0,
        "How often a running server records that it is up (for the `uptime` metric).",
        positive=True,
    )
    # --- chat ---------------------------------------------------------------------------------
    chat_message_rate_per_minute: int = setting(
        100, "Chat messages one user may send per minute, all sockets together (0: no limit)."
    )
    chat_typing_rate_per_minute: int = setting(
        10, "Chat typing events one user may send per minute (0: no limit)."
    )
    chat_connect_attempts_per_ip: int = setting(
        5,
        "Failed or refused /chat handshakes one IP may make per window before it is blocked "
        "(0: no limit).",
    )
    chat_connect_window_seconds: float = setting(
        300.0, "Window in which chat_connect_attempts_per_ip are counted."
    )
    chat_connect_block_seconds: float = setting(
        900.0, "How long an IP over chat_connect_attempts_per_ip is refused."
    )
    chat_handshakes_per_ip_per_minute: int = setting(
        600, "All /chat handshakes (failed or not) one IP may make per minute (0: no limit)."
    )
    chat_recovery_token_ttl_seconds: float = setting(
        120.0, "A recovery token stays valid this long after its socket disconnects."
    )
    chat_recovery_queue_max_messages: int = setting(
        1000, "Messages queued per recovery token while away (the oldest are dropped past it)."
    )
    chat_typing_expiry_seconds: float = setting(
        5.0, "A typing indicator stops on its own this long after the last typing event."
    )
    chat_max_message_chars: int = setting(4000, "Longest chat message content, in characters.")
    chat_history_page_max: int = setting(
        100, "Most messages one GET /api/chats/{id}/messages page returns (the limit parameter)."
    )
    chat_max_body_bytes: int = setting(
        1_048_576, "Largest POST /api/chats body in bytes (413 beyond).", positive=True
    )
    chat_monitoring_events_max: int = setting(
        1000, "Connection events /chat monitoring keeps (the oldest are dropped)."
    )
    chat_gap_wait_seconds: float = setting(
        0.2,
        "A chat message numbered past one not yet heard of waits this long for it before the "
        "missing ones are read from the database (a cluster's lost publishes).",
        positive=True,
    )
    chat_resync_interval_seconds: float = setting(
        5.0,
        "On a cluster, how often each node checks that it has heard of the latest message of "
        "each chat it has members in (a publish lost with nothing after it).",
        positive=True,
    )
    # --- guild --------------------------------------------------------------------------------
    guild_analytics_interval_seconds: float = setting(
        30.0,
        "`analytics:update` goes to a guild's analytics room at most this often (seconds).",
        positive=True,
    )
    guild_analytics_window_days: float = setting(
        7.0,
        "Guild analytics (ghosts, lurkers, channelDiversity) count events of this many days.",
        positive=True,
    )
    guild_analytics_top_n: int = setting(
        20, "Most users in each guild analytics list.", positive=True
    )
    guild_ghost_min_typing_events: int = setting(
        5, "Typing events (in the window) a user needs to be listed among the ghosts."
    )
    guild_max_subscriptions_per_socket: int = setting(
        50,
        "Distinct guilds one socket may subscribe to (guild and analytics rooms together).",
        positive=True,
    )
    guild_events_per_bot_per_second: int = setting(
        500, "Guild events one bot may post per second, socket and REST together (0: no limit)."
    )
    guild_max_batch_events: int = setting(
        500, "Most guild events in one POST or `guild:event`.", positive=True
    )
    guild_max_body_bytes: int = setting(
        1_048_576,
        "Largest POST /api/guilds/{guildId}/events body in bytes (413 beyond).",
        positive=True,
    )
    guild_max_string_chars: int = setting(
        256,
        "Longest string field of a guild event (ids, names, roles, platforms...).",
        positive=True,
    )
    guild_max_future_seconds: float = setting(
        300.0, "Refuse guild events stamped more than this many seconds ahead of the clock."
    )
    # --- demo ---------------------------------------------------------------------------------
    demo: bool = setting(
        False,
        "Make demo traffic through the public APIs (visitors, product events, a chat room, a "
        "guild bot); its data is marked and `switchboard reset-demo` deletes it.",
    )
    demo_events_per_second: float = setting(
        3.0, "Analytics events per second the demo traffic posts (about; at most 10).", maximum=10
    )
    # --- visitors ---------------------------------------------------------------------------
    session_timeout_minutes: float = setting(
        30.0, "A visitor session ends after this many minutes without events.", positive=True
    )
    cleanup_interval_minutes: float = setting(
        60.0,
        "How often the cleanup task ends expired visitor sessions and tells the feed (minutes); "
        "the REST answers count only active sessions at any moment.",
        positive=True,
    )
    alert_threshold: int = setting(
        10, "Visitors in the last minute above which the feed gets an `alert` (once a minute)."
    )
    visitor_ws_port: int = setting(
        0, "Also serve the raw visitor feed at `/` on this port (0: only at /ws/visitors)."
    )
    visitor_feed_max_queued_messages: int = setting(
        4096,
        "Feed messages queued for one dashboard; past it, it is closed as a slow consumer "
        "(at least 2 x ingest_max_batch_events + 16: one batch always fits).",
        positive=True,
    )
    visitor_feed_max_message_bytes: int = setting(
        65536,
        "Largest message a dashboard may send on the visitor feed (answered `error`).",
        positive=True,
    )
    visitor_sessions_page_max: int = setting(
        1000,
        "Most sessions one GET /api/analytics/sessions returns (its default limit).",
        positive=True,
    )
    visitor_journey_max_pages: int = setting(
        100,
        "Pages kept in one session's journey (the latest; the entry page is kept apart).",
        positive=True,
    )
    # --- retention ----------------------------------------------------------------------------
    event_retention_days: float = setting(
        30.0,
        "Analytics events, their idempotency keys and guild events older than this are deleted "
        "by housekeeping (0: keep forever). Views look back at most 48 h (guild analytics: "
        "guild_analytics_window_days), so it must cover that.",
    )
    # --- operations ---------------------------------------------------------------------------
    test_clock: bool = setting(
        False, "Expose POST /api/test/clock to advance the service clock (tests only)."
    )
    log_level: str = setting(
        "info", "debug, info, warning or error.", choices=("debug", "info", "warning", "error")
    )
    log_format: str = setting(
        "json", "json (one object per line) or text (for people).", choices=("json", "text")
    )
    shutdown_timeout_seconds: float = setting(
        10.0,
        "On SIGTERM/SIGINT: longest wait for in-flight work and clients before exiting.",
        positive=True,
    )
    metrics_token: str = setting(
        "",
        "Bearer token for GET /metrics; empty: an admin JWT is required (see metrics_public).",
        secret=True,
    )
    metrics_public: bool = setting(False, "Serve GET /metrics without any token.")
    housekeeping_interval_seconds: float = setting(
        60.0, "How often expired state (rate-limit windows, idle rooms...) is swept.", positive=True
    )

    # ------------------------------------------------------------------------------------------
    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    def masked(self) -> dict[str, Any]:
        """The effective settings with secrets hidden (for logs and check-config)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = "***" if f.metadata.get("secret") and value else value
        return out


def env_name(name: str) -> str:
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _parse(kind: Any, raw: str) -> Any:
    if kind in (bool, "bool"):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true/false, got {raw!r}")
    if kind in (int, "int"):
        return int(raw)
    if kind in (float, "float"):
        return float(raw)
    if kind in (list[str], "list[str]"):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _coerce(kind: Any, raw: Any) -> Any:
    """A flag/env string parsed, or a TOML value checked against the setting's type."""
    if isinstance(raw, str):
        return _parse(kind, raw)
    if kind in (bool, "bool"):
        if not isinstance(raw, bool):
            raise ValueError(f"expected true/false, got {raw!r}")
        return raw
    if kind in (int, "int"):
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"expected an integer, got {raw!r}")
        return raw
    if kind in (float, "float"):
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise ValueError(f"expected a number, got {raw!r}")
        return float(raw)
    if kind in (list[str], "list[str]"):
        if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
            raise ValueError(f"expected a list of strings, got {raw!r}")
        return raw
    raise ValueError(f"expected text, got {raw!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per setting; unset flags stay None so the environment/default can apply."""
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help=f"TOML file of settings (env {ENV_PREFIX}CONFIG); flags and env override it",
    )
    for f in dataclasses.fields(Settings):
        parser.add_argument(
            flag_name(f.name),
            dest=f.name,
            default=None,
            metavar=f.name.upper(),
            help=f"{f.metadata['help']} (env {env_name(f.name)})",
        )


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a TOML file (top-level keys, or a ``[switchboard]`` table)."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path}: {exc}") from None
    table = data.get("switchboard", data)
    known = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return dict(table)


def from_sources(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
) -> Settings:
    """Build settings: flag over environment over config file over default.

    Raises ValueError naming the setting and where its bad value came from."""
    flags = flags or {}
    environ = os.environ if environ is None else environ
    if config_file is None:
        config_file = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG") or None
    file_values = read_config_file(config_file) if config_file else {}
    values: dict[str, Any] = {}
    for f in dataclasses.fields(Settings):
        raw = flags.get(f.name)
        source = flag_name(f.name)
        if raw is None:
            raw = environ.get(env_name(f.name))
            source = env_name(f.name)
        if raw is None and f.name in file_values:
            raw = file_values[f.name]
            source = f"{f.name} in {config_file}"
        if raw is None:
            continue
        try:
            values[f.name] = _coerce(f.type, raw)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid {source}: {exc}") from None
    settings = Settings(**values)
    validate(settings)
    return settings


def validate(settings: Settings) -> None:
    """Refuse values no deployment could mean, naming the flag: the bounds each setting
    declares, then the rules that tie settings together. ``serve`` and ``check-config`` both
    build their settings through :func:`from_sources`, so they refuse exactly the same."""
    for f in dataclasses.fields(Settings):
        _check_bounds(settings, f)
    settings.store_synchronous = settings.store_synchronous.upper()
    for rule in RULES:
        rule(settings)


def _check_bounds(settings: Settings, f: dataclasses.Field[Any]) -> None:
    value = getattr(settings, f.name)
    flag = flag_name(f.name)
    rules = f.metadata
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"invalid {flag}: must not be negative")
        if rules["positive"] and value == 0:
            raise ValueError(f"invalid {flag}: must be positive")
        if rules["maximum"] is not None and value > rules["maximum"]:
            raise ValueError(f"invalid {flag}: at most {rules['maximum']:g}")
    choices = rules["choices"]
    if choices and (value.upper() if f.name == "store_synchronous" else value) not in choices:
        raise ValueError(f"invalid {flag}: {value!r}")


def _retention_covers_the_views(s: Settings) -> None:
    needed = max(2.0, s.guild_analytics_window_days)
    if s.event_retention_days and s.event_retention_days < needed:
        raise ValueError(
            f"invalid {flag_name('event_retention_days')}: {s.event_retention_days} is shorter "
            f"than the {needed:g} days the analytics look back (0 keeps events forever)"
        )


def _proxies_parse(s: Settings) -> None:
    try:
        parse_networks(s.trusted_proxies)
    except ValueError as err:
        raise ValueError(f"invalid {flag_name('trusted_proxies')}: {err}") from None


def _one_batch_fits_a_feed_queue(s: Settings) -> None:
    least = 2 * s.ingest_max_batch_events + 16
    if s.visitor_feed_max_queued_messages < least:
        raise ValueError(
            "invalid --visitor-feed-max-queued-messages: must be at least 2 x "
            f"--ingest-max-batch-events + 16 ({least}), so that one batch always fits"
        )


def _visitor_port(s: Settings) -> None:
    if s.visitor_ws_port > 65535:
        raise ValueError("invalid --visitor-ws-port: must be 0 (off) or a TCP port")
    if s.visitor_ws_port and s.visitor_ws_port == s.port:
        raise ValueError("invalid --visitor-ws-port: must differ from --port")


def _workers_need_redis(s: Settings) -> None:
    if s.workers > 1 and not s.redis_url:
        raise ValueError(
            f"invalid --workers: {s.workers} workers need --redis-url "
            "(the workers share their rooms through Redis)"
        )
    if s.workers > 1 and s.advertise_url:
        raise ValueError(
            "invalid --advertise-url: with --workers each worker advertises a port of its own"
        )


def _a_cluster_needs_postgres(s: Settings) -> None:
    if (s.workers > 1 or s.redis_url) and not s.database_url:
        what = f"{s.workers} workers" if s.workers > 1 else "the nodes of a cluster (--redis-url)"
        raise ValueError(
            f"invalid --database-url: {what} need PostgreSQL (--database-url postgresql://...): "
            "the SQLite default is one process's file and cannot be shared"
        )


def _database_url_parses(s: Settings) -> None:
    if s.database_url and not s.database_url.startswith(("postgresql://", "postgres://")):
        raise ValueError(
            "invalid --database-url: expected postgresql://user:password@host:port/database"
        )


def _redis_url_parses(s: Settings) -> None:
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("invalid --redis-url: expected redis://host:port[/db] (or rediss://)")


def _demo_needs_a_port(s: Settings) -> None:
    if s.demo and s.port == 0:
        raise ValueError("invalid --demo: the demo traffic needs a fixed --port (not 0)")


BCRYPT_HASH = re.compile(r"\$2[aby]?\$\d{2}\$[./A-Za-z0-9]{53}")


def _admin_ui_login(s: Settings) -> None:
    if bool(s.admin_ui_username) != bool(s.admin_ui_password_hash):
        raise ValueError(
            "invalid --admin-ui-username: it needs --admin-ui-password-hash, and the other way "
            "round"
        )
    if s.admin_ui_password_hash and not BCRYPT_HASH.fullmatch(s.admin_ui_password_hash):
        raise ValueError(
            "invalid --admin-ui-password-hash: expected a bcrypt hash ($2b$12$...; "
            "`switchboard hash-password` makes one)"
        )
    if not s.admin_ui_namespace.startswith("/") or "," in s.admin_ui_namespace:
        raise ValueError("invalid --admin-ui-namespace: a namespace starts with / (e.g. /admin)")


RULES: tuple[Callable[[Settings], None], ...] = (
    _admin_ui_login,
    _retention_covers_the_views,
    _proxies_parse,
    _one_batch_fits_a_feed_queue,
    _visitor_port,
    _workers_need_redis,
    _redis_url_parses,
    _database_url_parses,
    _a_cluster_needs_postgres,
    _demo_needs_a_port,
)


def markdown_table(fields: Sequence[dataclasses.Field[Any]] | None = None) -> str:
    rows = ["| setting | flag | environment | default | meaning |", "|---|---|---|---|---|"]
    for f in fields or dataclasses.fields(Settings):
        if f.default_factory is not dataclasses.MISSING:
            default: Any = f.default_factory()
        else:
            default = f.default
        shown = ", ".join(default) if isinstance(default, list) else default
        rows.append(
            f"| `{f.name}` | `{flag_name(f.name)}` | `{env_name(f.name)}` | `{shown!s}` "
            f"| {f.metadata['help']} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
