"""The neodefense command line, end to end on real files and a real SQLite catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neodefense.cli import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"


@pytest.fixture()
def catalog(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.sqlite'}"


def _run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_ingest_json_receipt_contract(capsys, catalog):
    out = _run(capsys, "ingest", str(DATA / "2008_TC3.obs80"), "--catalog", catalog, "--json")
    receipt = json.loads(out)
    assert {"file", "submission_id", "accepted", "duplicates", "rejected"} <= set(receipt)
    assert receipt["file"].endswith("2008_TC3.obs80")
    assert receipt["accepted"] == 883 and receipt["duplicates"] == 0 and receipt["rejected"] == []

    again = json.loads(_run(capsys, "ingest", str(DATA / "2008_TC3.obs80"), "--catalog", catalog,
                            "--json"))
    assert again["accepted"] == 0 and again["duplicates"] == 883
    assert again["submission_id"] != receipt["submission_id"]


def test_observations_round_trip_obs80(capsys, catalog):
    _run(capsys, "ingest", str(DATA / "2024_BX1.obs80"), "--catalog", catalog)
    out = _run(capsys, "observations", "2024 BX1", "--catalog", catalog, "--format", "obs80")
    original = (DATA / "2024_BX1.obs80").read_text().splitlines()
    assert sorted(out.splitlines()) == sorted(original)

    for form in ("K24B01X", "2024BX1"):
        psv = _run(capsys, "observations", form, "--catalog", catalog, "--format", "psv")
        data_lines = [ln for ln in psv.splitlines() if ln and not ln.startswith("#")]
        assert len(data_lines) == 1 + 328  # column header + records

    rows = json.loads(_run(capsys, "observations", "2024 BX1", "--catalog", catalog,
                           "--format", "json"))
    assert len(rows) == 328
    assert all(r["stn"] for r in rows)


def test_unknown_designation_is_a_clear_error(capsys, catalog):
    _run(capsys, "ingest", str(DATA / "2024_BX1.obs80"), "--catalog", catalog)
    assert main(["observations", "2099 ZZ99", "--catalog", catalog]) == 1
    assert "2099 ZZ99" in capsys.readouterr().err


def test_summary(capsys, catalog):
    _run(capsys, "ingest", str(DATA / "101955_Bennu.obs80"), "--catalog", catalog)
    summary = json.loads(_run(capsys, "summary", "--catalog", catalog, "--json"))
    assert summary  # structure owned by catalog.queries.summary; content checked there
