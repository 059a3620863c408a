from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"


def need_tool(*names: str, hint: str = "`make tools` installs it (root with apt-get)") -> str:
    """The path of the first of ``names`` on PATH. A missing external tool must not pass
    silently: the test fails under CI=true (CI must have it) and skips otherwise, saying
    which tool is missing and how to get it."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    msg = f"{' or '.join(names)} not installed: {hint}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(msg)
    pytest.skip(msg)


def contract_dir() -> Path:
    """The normative contract; vendored copy in tests/contract when ../shared is absent."""
    for cand in (CONTRACT, Path(__file__).parent / "contract"):
        if (cand / "alert.schema.json").exists():
            return cand
    raise FileNotFoundError("contract directory not found")


@pytest.fixture(scope="session")
def contract() -> Path:
    return contract_dir()


@pytest.fixture(scope="session")
def alert_validator(contract: Path):
    import jsonschema

    schema = json.loads((contract / "alert.schema.json").read_text())
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
