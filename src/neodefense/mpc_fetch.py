"""Optional, online: fetch an object's observations from the Minor Planet Center (astroquery).

Nothing in the pipeline depends on this; it is a convenience for scientists who want the MPC's
current set of an object's observations as an obs80 file to ingest.
"""

from __future__ import annotations

from neodefense.observations import designations


def fetch_obs80(designation: str) -> str:
    """All MPC observations of ``designation`` as obs80 text (one record per line, as the MPC
    stores them; two-line records keep both lines)."""
    from astroquery.mpc import MPC

    target = designations.normalize(designation)
    table = MPC.get_observations(target, get_mpcformat=True, cache=False)
    lines = [str(row).rstrip("\n") for row in table["obs"]]
    return "\n".join(lines) + "\n"
