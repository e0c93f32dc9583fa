"""A notifier plugin as an alert channel: `type = "plugin"`, found in plugin_paths."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from cachetop.alerts.service import AlertService
from cachetop.engine.config import load_config
from cachetop.engine.configfile import ConfigError
from cachetop.engine.monitor import Monitor
from cachetop.servers import free_port
from cachetop.util.redact import scrub

PLUGIN = '''
import json

from cachetop.alerts.notify import Delivered


class FileNotifier:
    """Appends each message to a file."""

    min_interval_s = 0.0

    def __init__(self, options):
        self.path = options["path"]

    def send(self, message, thread_id):
        with open(self.path, "a") as f:
            f.write(json.dumps({"kind": message.kind, "payload": message.payload}) + "\\n")
        return Delivered()


NOTIFIERS = {"file": FileNotifier}
'''


def write(tmp_path: Path, plugin: str = "file") -> Path:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    (tmp_path / "plugins" / "file_notifier.py").write_text(PLUGIN)
    config = tmp_path / "cachetop.toml"
    config.write_text(
        textwrap.dedent(
            f"""
            plugin_paths = ["plugins"]

            [settings]
            interval = "100ms"
            window = "1s"
            state_dir = "{tmp_path / "state"}"

            [[instance]]
            name = "gone"
            url = "redis://127.0.0.1:{free_port()}"

            [alerts]
            instance_down_for = "200ms"

            [channel.audit]
            type = "plugin"
            plugin = "{plugin}"
            options = {{ path = "{tmp_path / "sent.jsonl"}", api_token = "tok-Plugin-Secret" }}
            """
        )
    )
    return config


async def test_a_plugin_channel_receives_the_firing_alert(tmp_path: Path) -> None:
    config = load_config(write(tmp_path))
    sent = tmp_path / "sent.jsonl"
    async with AlertService(config) as alerts, Monitor(config) as monitor:
        alerts.attach(monitor)
        await monitor.wait_snapshot(lambda s: sent.exists() and sent.read_text().strip() != "", 10)
    [line] = sent.read_text().splitlines()
    message = json.loads(line)
    assert message["kind"] == "firing"
    assert [a["rule"] for a in message["payload"]["alerts"]] == ["instance_down"]
    # Option values named like secrets are scrubbed from output like our own.
    assert scrub("token tok-Plugin-Secret") == "token ***"


async def test_a_missing_plugin_is_a_config_error_naming_the_channel(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, plugin="nosuch"))
    with pytest.raises(
        ConfigError, match=r"\[channel.audit\]: no notifier named 'nosuch' \(installed: .*file"
    ):
        async with AlertService(config):
            pass
