from __future__ import annotations

import json
from pathlib import Path

import pytest

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract"


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
