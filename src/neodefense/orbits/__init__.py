"""Orbits: element conversions (:mod:`.elements`) and the optical observation model
(:mod:`.observation_model`: light time, topocentric astrometric RA/Dec, partials, residuals)."""
