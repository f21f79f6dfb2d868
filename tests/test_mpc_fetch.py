"""fetch-mpc through astroquery, against a response in the MPC's JSON form built from real lines.

No network: astroquery's HTTP request is replaced by one that returns what the MPC observations
service returns (a JSON list of records carrying ``original_record``), made from the real 2024 BX1
file.
"""

from __future__ import annotations

import json
from pathlib import Path

from neodefense import mpc_fetch
from neodefense.cli import main

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"


class _Response:
    def __init__(self, text: str):
        self.text = text
        self.status_code = 200

    def raise_for_status(self) -> None:
        return None


def _recorded(monkeypatch, path: Path) -> list[dict]:
    from astroquery.mpc import MPC

    records = [{"original_record": line, "object_type": "M"}
               for line in path.read_text().splitlines()]
    seen: list[dict] = []

    def fake_request(method, url, **kwargs):
        seen.append({"method": method, "url": url, "params": kwargs.get("params")})
        return _Response(json.dumps(records))

    monkeypatch.setattr(MPC, "_request", fake_request)
    return seen


def test_fetch_obs80_returns_the_records_verbatim(monkeypatch):
    seen = _recorded(monkeypatch, DATA / "2024_BX1.obs80")
    text = mpc_fetch.fetch_obs80("K24B01X")
    assert text.splitlines() == (DATA / "2024_BX1.obs80").read_text().splitlines()
    assert seen[0]["params"]["designation"] == "2024 BX1"


def test_fetch_then_ingest(monkeypatch, tmp_path, capsys):
    _recorded(monkeypatch, DATA / "2024_BX1.obs80")
    out = tmp_path / "bx1.obs80"
    assert main(["fetch-mpc", "2024 BX1", "-o", str(out)]) == 0
    catalog = f"sqlite:///{tmp_path / 'c.sqlite'}"
    capsys.readouterr()
    assert main(["ingest", str(out), "--catalog", catalog, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 328
