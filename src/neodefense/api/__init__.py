"""The HTTP front door: the FastAPI application (open read API, observatory submissions,
subscriptions, administration) and the server-rendered dashboard. :func:`create_app` builds it
over a catalog; ``neodefense serve`` runs it with uvicorn."""
from neodefense.api.app import create_app

__all__ = ["create_app"]
