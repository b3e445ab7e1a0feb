"""The command line: configuration precedence (flag > env > file > default), check-config masking
secrets and refusing bad values, and tokens signed with the key `serve` would use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.processes import REPO_ROOT as ROOT
from web.platform.auth import Authenticator, load_or_create_secret


def switchboard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "web.cli", *args],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_precedence_is_flag_then_env_then_file_then_default(tmp_path: Path) -> None:
    config = tmp_path / "switchboard.toml"
    config.write_text('port = 9001\nlog_format = "text"\nping_interval_ms = 1234\n')
    done = switchboard(
        "check-config", "--config", str(config), "--port", "9003",
        env={"SWITCHBOARD_PORT": "9002", "SWITCHBOARD_LOG_FORMAT": "json"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    effective = json.loads(done.stdout)
    assert effective["port"] == 9003  # flag over env over file
    assert effective["log_format"] == "json"  # env over file
    assert effective["ping_interval_ms"] == 1234  # file over default
    assert effective["max_outbox_bytes"] == 4_194_304  # default


def test_check_config_masks_secrets(tmp_path: Path) -> None:
    done = switchboard("check-config", "--jwt-secret", "s3cret-value", "--metrics-token", "m-tok")
    assert done.returncode == 0
    assert "s3cret-value" not in done.stdout and "m-tok" not in done.stdout
    effective = json.loads(done.stdout)
    assert effective["jwt_secret"] == effective["metrics_token"] == "***"


def test_check_config_refuses_bad_values_by_name(tmp_path: Path) -> None:
    cases = [
        (["--port", "many"], "invalid --port"),
        (["--max-outbox-bytes", "-1"], "invalid --max-outbox-bytes: must not be negative"),
        (["--log-format", "xml"], "invalid --log-format"),
        (["--event-retention-days", "1"], "invalid --event-retention-days"),
        (
            ["--trusted-proxies", "10.0.0.1,nginx"],
            "invalid --trusted-proxies: 'nginx' is not an IP address or CIDR network",
        ),
    ]
    for flags, message in cases:
        done = switchboard("check-config", *flags)
        assert done.returncode == 2, (flags, done.stdout)
        assert message in done.stderr, (flags, done.stderr)
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text("no_such_setting = 1\n")
    done = switchboard("check-config", "--config", str(bad_file))
    assert done.returncode == 2 and "unknown setting(s) no_such_setting" in done.stderr


def test_token_is_signed_with_the_servers_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = switchboard(
        "token", "--sub", "alice", "--name", "Alice", "--role", "bot", "--guilds", "g1,g2",
        "--ttl", "60", "--data-dir", str(data),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the key `serve` would use for this data folder (generated and kept there)
    identity = Authenticator(load_or_create_secret(data)).verify(done.stdout.strip())
    assert (identity.user_id, identity.name, identity.role) == ("alice", "Alice", "bot")
    assert identity.guilds == frozenset({"g1", "g2"})
    refused = switchboard("token", "--sub", "x", "--role", "root", "--data-dir", str(data))
    assert refused.returncode != 0


def test_serve_and_check_config_refuse_the_same_bad_settings(tmp_path: Path) -> None:
    """One validation path: every setting ``serve`` refuses, ``check-config`` refuses with the
    same message (and the reverse), whichever application the setting belongs to."""
    cases = [
        ["--guild-max-batch-events", "0"],  # guild
        ["--guild-analytics-interval-seconds", "0"],  # guild (check-config used to miss it)
        ["--visitor-ws-port", "70000"],  # visitors
        ["--visitor-feed-max-queued-messages", "10"],  # visitors, tied to the ingest batch
        ["--events-max-per-push", "0"],  # analytics
        ["--chat-max-body-bytes", "0"],  # chat
        ["--demo", "true", "--port", "0"],  # demo
        ["--demo-events-per-second", "11"],  # demo
        ["--ping-interval-ms", "0"],  # platform
        ["--store-synchronous", "sometimes"],  # platform
    ]
    for flags in cases:
        data = ["--data-dir", str(tmp_path / "data")]
        checked = switchboard("check-config", *flags, *data)
        served = switchboard("serve", "--port", "0", *flags, *data)
        assert checked.returncode == 2, (flags, checked.stdout)
        assert served.returncode != 0, (flags, served.stdout)
        reason = checked.stderr.strip().removeprefix("switchboard: ")
        assert reason.startswith("invalid --"), (flags, checked.stderr)
        assert reason in served.stderr, (flags, served.stderr)
