"""Impact monitoring: virtual asteroids, b-plane analysis, virtual impactors and risk scales."""
