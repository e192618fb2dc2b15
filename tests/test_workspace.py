"""The workspace contract: four packages, each importable with its own version."""

import importlib

import pytest

from ecg_data.registry import LazyRegistry, UnknownNameError


@pytest.mark.parametrize("name", ["ecg_data", "ecg_encoders", "ecg_text_align", "ecg_eval"])
def test_package_imports_with_version(name: str) -> None:
    mod = importlib.import_module(name)
    assert mod.__version__.count(".") == 2


def test_lazy_registry_resolves_and_lists_valid_names() -> None:
    reg = LazyRegistry("thing", {"join": "os.path:join"})
    assert reg.build("join", "a", "b") == "a/b"
    with pytest.raises(UnknownNameError, match="valid names: join"):
        reg.get("nope")
