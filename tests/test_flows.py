"""The Prefect ingest flow, run embedded (temporary Prefect API), over a real inbox on disk."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"


pytestmark = pytest.mark.usefixtures("prefect_embedded")


def _settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[paths]\ndata_dir = "{tmp_path.as_posix()}"\n[catalog]\nurl = ""\n')
    return path


def test_inbox_flow_ingests_settles_and_quarantines(tmp_path: Path):
    from flows.ingest import ingest_inbox

    inbox = tmp_path / "inbox"
    (inbox / "G96").mkdir(parents=True)
    (inbox / "J04").mkdir(parents=True)
    shutil.copyfile(DATA / "2024_BX1.obs80", inbox / "G96" / "bx1.obs80")
    lines = (DATA / "2008_TC3.obs80").read_text().splitlines(keepends=True)[:10]
    lines[3] = lines[3][:20] + "99" + lines[3][22:]  # day 99 of October: an impossible date
    (inbox / "J04" / "tc3.obs80").write_text("".join(lines))

    receipts = ingest_inbox(config_path=str(_settings_file(tmp_path)))

    by_file = {r["file"]: r for r in receipts}
    assert by_file["bx1.obs80"]["accepted"] == 328
    assert by_file["bx1.obs80"]["rejected"] == []
    assert by_file["tc3.obs80"]["accepted"] == 9
    [rejection] = by_file["tc3.obs80"]["rejected"]
    assert rejection["line"] == 4 and rejection["field"] == "obsTime"
    assert (tmp_path / "processed" / "G96" / "bx1.obs80").is_file()
    quarantined = tmp_path / "quarantine" / "J04" / "tc3.obs80"
    assert quarantined.is_file()
    note = json.loads((quarantined.parent / "tc3.obs80.receipt.json").read_text())
    assert note["rejected"][0]["line"] == 4
    assert not any((inbox / "G96").iterdir()) and not any((inbox / "J04").iterdir())

    # The same files again: nothing new is stored, the receipts say duplicates.
    shutil.copyfile(DATA / "2024_BX1.obs80", inbox / "G96" / "bx1.obs80")
    [again] = ingest_inbox(config_path=str(_settings_file(tmp_path)))
    assert again["accepted"] == 0 and again["duplicates"] == 328


def test_transient_database_error_is_retried(tmp_path: Path, monkeypatch):
    from flows import ingest as ingest_flow
    from neodefense.catalog import ingest as catalog_ingest

    real = catalog_ingest.ingest
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise sa_exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(catalog_ingest, "ingest", flaky)
    inbox = tmp_path / "inbox" / "MPC"
    inbox.mkdir(parents=True)
    shutil.copyfile(DATA / "2024_BX1.obs80", inbox / "bx1.obs80")
    [receipt] = ingest_flow.ingest_inbox(config_path=str(_settings_file(tmp_path)))
    assert calls["n"] == 2
    assert receipt["accepted"] == 328
