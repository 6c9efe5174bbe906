"""The operator's registries: parsed from settings, credentials kept out of every repr and
error, and a reference to any other host refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from atoll.config import load_settings
from atoll.errors import ConfigError
from atoll.images.access import RegistryAccess, parse_registries, registry_for
from atoll.images.errors import RegistryNotAllowed
from atoll.images.reference import ImageReference

PASSWORD = "pw-ZX81-never-printed"


def test_settings_read_registries_and_never_show_the_password(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        "[[image_registries]]\n"
        'host = "Registry.Example:5000"\n'
        'username = "puller-name"\n'
        f'password = "{PASSWORD}"\n'
        "[[image_registries]]\n"
        'host = "127.0.0.1:5001"\n'
        "insecure = true\n"
    )
    settings = load_settings(tmp_path, database_url="sqlite://")
    first, second = settings.image_registries
    assert first.host == "registry.example:5000"
    assert first.password.get_secret_value() == PASSWORD
    assert second.base_url == "http://127.0.0.1:5001" and not second.has_credentials
    for text in (repr(settings), str(settings), repr(first), str(first)):
        assert PASSWORD not in text and "puller-name" not in text


def test_registries_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(
        "ATOLL_IMAGE_REGISTRIES", f'[{{"host": "r.example", "password": "{PASSWORD}"}}]'
    )
    settings = load_settings(tmp_path)
    assert settings.image_registries[0].host == "r.example"


@pytest.mark.parametrize(
    "raw",
    [
        [{"host": "r.example", "pasword": PASSWORD}],
        [{"host": "r.example", "password": ["not", "a", "string", PASSWORD]}],
        [{"host": f"bad host {PASSWORD}", "password": PASSWORD}],
        [{"host": "r.example"}, {"host": "R.example"}],
        {"host": "r.example"},
        "not json " + PASSWORD,
    ],
)
def test_bad_registry_settings_name_no_value(raw: object) -> None:
    with pytest.raises(ValueError) as caught:
        parse_registries(raw)
    assert PASSWORD not in str(caught.value)


def test_bad_registry_settings_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "settings.toml").write_text(
        f'[[image_registries]]\nhost = "r.example"\npasword = "{PASSWORD}"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert "image_registries" in caught.value.message and PASSWORD not in caught.value.message


def test_only_listed_registries_are_used() -> None:
    listed = [RegistryAccess(host="r.example"), RegistryAccess(host="127.0.0.1:5000")]
    assert registry_for(ImageReference.parse("r.example/a:1"), listed).host == "r.example"
    for text in ("r.example:443/a:1", "evil.example/a:1", "127.0.0.1:5001/a:1", "localhost/a"):
        with pytest.raises(RegistryNotAllowed):
            registry_for(ImageReference.parse(text), listed)
    with pytest.raises(RegistryNotAllowed):
        registry_for(ImageReference.parse("r.example/a:1"), [])
