"""Bad submissions through the whole ingest, on SQLite and PostgreSQL.

Each bad input is rejected with file, line, field and reason; the good lines beside it are
stored; the raw bytes are kept verbatim whatever happens.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from neodefense.catalog import ingest, queries

OBS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "observations"
TC3 = (OBS / "2008_TC3.obs80").read_text().splitlines()
GOOD = TC3[10]  # "     K08T03C  C2008 10 06.xxxxx 23 ..  +07 ..  mag V...G96"


def _with(line: str, col: int, text: str) -> str:
    """Replace obs80 columns starting at 1-based ``col`` with ``text``."""
    return line[: col - 1] + text + line[col - 1 + len(text):]


OBS80_CASES = {
    "truncated line": (GOOD[:50], None),
    "shifted columns": (" " + GOOD[:79], None),
    "impossible date": (_with(GOOD, 16, "2008 02 30.12345"), "obsTime"),
    "month 13": (_with(GOOD, 16, "2008 13 06.12345"), "obsTime"),
    "RA 24h": (_with(GOOD, 33, "24 00 00.00"), "ra"),
    "RA minutes 61": (_with(GOOD, 33, "23 61 00.00"), "ra"),
    "Dec beyond the pole": (_with(GOOD, 45, "+91 00 00.0"), "dec"),
    "unknown station": (_with(GOOD, 78, "ZZ9"), "stn"),
}


@pytest.mark.parametrize("case", sorted(OBS80_CASES))
def test_bad_obs80_line_is_rejected_and_neighbours_kept(catalog_engine, case):
    bad, field = OBS80_CASES[case]
    lines = [TC3[0], bad, TC3[2]]
    data = ("\n".join(lines) + "\n").encode()
    receipt = ingest.ingest(catalog_engine, data, "bad.obs80", submitter="test")
    assert receipt.accepted == 2, receipt.as_json()
    [rejection] = receipt.rejected
    assert rejection["line"] == 2
    if field:
        assert rejection["field"] == field
    assert rejection["reason"]
    stored = queries.rejections(catalog_engine, receipt.submission_id)
    assert [r["raw"] for r in stored] == [bad]
    assert b"".join(queries.raw_bytes(catalog_engine, receipt.sha256)) == data


def test_non_utf8_bytes(catalog_engine):
    data = (TC3[0] + "\n").encode() + _with(GOOD, 60, "\xff").encode("latin-1") + b"\n"
    receipt = ingest.ingest(catalog_engine, data, "latin1.obs80")
    assert receipt.accepted == 1
    [rejection] = receipt.rejected
    assert rejection["line"] == 2 and rejection["reason"]
    assert b"".join(queries.raw_bytes(catalog_engine, receipt.sha256)) == data


def test_empty_file_is_stored_and_says_so(catalog_engine):
    receipt = ingest.ingest(catalog_engine, b"", "empty.obs80")
    data = receipt.as_json()
    assert data["accepted"] == 0 and data["duplicates"] == 0
    assert data["rejected"], "an empty submission must say why nothing was accepted"
    assert queries.submission(catalog_engine, receipt.submission_id)["size"] == 0


XML_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<ades version="2022"><obsBlock><obsData><optical><provID>&lol9;</provID></optical></obsData>
</obsBlock></ades>
"""


def test_xml_bomb_is_refused_unexpanded(catalog_engine):
    receipt = ingest.ingest(catalog_engine, XML_BOMB, "bomb.xml")
    assert receipt.accepted == 0
    assert receipt.rejected and receipt.rejected[0]["field"] == "xml"
    assert b"".join(queries.raw_bytes(catalog_engine, receipt.sha256)) == XML_BOMB


def test_ades_psv_missing_required_fields(catalog_engine):
    psv = textwrap.dedent("""\
        # version=2022
        permID|provID|trkSub|mode|stn|obsTime|ra|dec|astCat
        |2023 MQ5||CCD|J95|2023-07-06T00:17:43.77Z|273.13141|40.61177|Gaia2
        |2023 MQ5||CCD||2023-07-06T00:27:43.77Z|273.13241|40.61277|Gaia2
        |2023 MQ5||CCD|J95||273.13341|40.61377|Gaia2
        ||||CCD|J95|2023-07-06T00:47:43.77Z|273.13441|40.61477|Gaia2
        |2023 MQ5||CCD|J95|2023-07-06T00:57:43.77Z||40.61577|Gaia2
        """).replace("||||CCD", "|||CCD").encode()
    receipt = ingest.ingest(catalog_engine, psv, "missing.psv")
    assert receipt.accepted == 1
    fields = {r["line"]: r["field"] for r in receipt.rejected}
    assert set(fields) == {4, 5, 6, 7}
    assert fields[4] == "stn" and fields[5] == "obsTime" and fields[7] == "ra"


_MEMORY_PROBE = """
import sys, hashlib, tracemalloc
from pathlib import Path
tracemalloc.start()
from neodefense.catalog import db, ingest, queries
engine = db.connect(sys.argv[2])
receipt = ingest.ingest(engine, Path(sys.argv[1]), "big.obs80", chunk_bytes=8 << 20)
sha = hashlib.sha256()
for chunk in queries.raw_bytes(engine, receipt.sha256):
    sha.update(chunk)
# VmHWM: this process's own peak RSS. (ru_maxrss is not: Linux carries the parent's peak over
# fork and exec, so under a long pytest session it reports the test runner's size.)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status")
              if line.startswith("VmHWM:"))
print(receipt.accepted, receipt.duplicates, receipt.n_rejected, sha.hexdigest(),
      hwm_kb // 1024, tracemalloc.get_traced_memory()[1] // 2**20)
"""


def _ingest_in_subprocess(path: Path, url: str) -> tuple[int, int, int, str, int, int]:
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path), url], check=True,
                         capture_output=True, text=True, timeout=900).stdout.split()
    return int(out[0]), int(out[1]), int(out[2]), out[3], int(out[4]), int(out[5])


@pytest.mark.slow
def test_200_mb_file_streams_in_constant_memory(tmp_path):
    """A 200 MB submission (2008 TC3 repeated) ingests completely in memory that does not grow
    with the file. Measured two ways in a fresh process: the peak of Python/numpy allocations
    (tracemalloc) must not grow from a 20 MB to a 200 MB file by more than 40 MB; the process's
    peak RSS — which also holds SQLite's 64 MiB page cache and allocator arenas, both of which fill
    up with a larger database and vary with the machine's state — stays well below the file size
    plus the baseline (a file held in memory would add ≥ 200 MB)."""
    block = (OBS / "2008_TC3.obs80").read_bytes()
    rss, traced = {}, {}
    for mb in (20, 200):
        path = tmp_path / f"big{mb}.obs80"
        copies = mb * 1_000_000 // len(block) + 1
        with open(path, "wb") as fh:
            fh.write(block * copies)
        expected_sha = hashlib.sha256(block * copies).hexdigest()
        accepted, duplicates, rejected, sha, rss[mb], traced[mb] = _ingest_in_subprocess(
            path, f"sqlite:///{tmp_path / f'c{mb}.sqlite'}")
        assert (accepted, duplicates, rejected) == (883, 883 * (copies - 1), 0)
        assert sha == expected_sha
        path.unlink()
    print(json.dumps({"peak_rss_mb": rss, "peak_traced_mb": traced}))
    assert traced[200] - traced[20] < 40, traced
    assert rss[200] < 700, rss
