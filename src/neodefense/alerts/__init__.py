"""Alerts: the risk-list rules, the alert payload, subscriber criteria, VOEvent and message texts.

Everything here is pure (no database, no network): :mod:`.rules` turns an assessment into
events and a new per-object state, :mod:`.criteria` decides which subscribers hear an alert,
:mod:`.voevent` and :mod:`.messages` render the payload. The catalog side (states, alerts,
deliveries) lives in ``neodefense.catalog.alerts``.
"""
