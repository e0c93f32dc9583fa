"""[settings] api_token, action_token, api_tls_cert, api_tls_key: parsed, checked with file:line,
${ENV} expanded, and counted as secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from cachetop.engine.config import load_config
from cachetop.engine.configfile import ConfigError


def _load(tmp_path: Path, settings: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text(f'[settings]\n{settings}\n\n[[instance]]\nname = "a"\nurl = "redis://127.0.0.1:6379"\n')
    path.chmod(0o600)
    return load_config(path)


def test_tokens_come_from_the_environment_and_are_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_TOKEN_FOR_TEST", "0123456789abcdef-api")
    config = _load(tmp_path, 'api_token = "${API_TOKEN_FOR_TEST}"\naction_token = "0123456789abcdef-act"')
    settings = config.settings  # type: ignore[attr-defined]
    assert (settings.api_token, settings.action_token) == ("0123456789abcdef-api", "0123456789abcdef-act")
    assert {"0123456789abcdef-api", "0123456789abcdef-act"} <= set(config.secrets)  # type: ignore[attr-defined]


def test_a_short_token_is_refused_at_its_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, 'interval = "1s"\napi_token = "short"')
    assert "c.toml:3" in str(err.value) and "at least 16 characters" in str(err.value)
    assert "'short'" not in str(err.value) and '"short"' not in str(err.value)  # no token in errors


def test_a_certificate_needs_its_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, 'api_tls_cert = "/etc/cert.pem"')
    assert "api_tls_cert and api_tls_key go together" in str(err.value)
