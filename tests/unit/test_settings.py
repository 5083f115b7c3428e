from __future__ import annotations

from pathlib import Path

import pytest

from fte_core.errors import ConfigError
from service.settings import load_settings


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings.database_url is None
    assert settings.llm_model is None
    assert settings.data_dir == ".fte"


def test_values_are_typed_and_errors_name_the_variable() -> None:
    settings = load_settings({"FTE_LLM_FALLBACKS": "a/b, c/d", "FTE_THREAD_WINDOW_HOURS": "2"})
    assert settings.llm_fallbacks == ("a/b", "c/d")
    assert settings.thread_window_hours == 2.0
    with pytest.raises(ConfigError, match="FTE_THREAD_WINDOW_HOURS"):
        load_settings({"FTE_THREAD_WINDOW_HOURS": "soon"})
    with pytest.raises(ConfigError, match="FTE_STORAGE"):
        load_settings({"FTE_STORAGE": "floppy"})


def test_secrets_come_from_mounted_files_and_are_not_in_repr(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("sk-very-secret\n")
    settings = load_settings({"FTE_LLM_API_KEY_FILE": str(secret)})
    assert settings.llm_api_key == "sk-very-secret"
    assert "sk-very-secret" not in repr(settings)
    with pytest.raises(ConfigError, match="FTE_LLM_API_KEY_FILE"):
        load_settings({"FTE_LLM_API_KEY_FILE": str(tmp_path / "missing")})
