"""Prefect flows: thin orchestration over neodefense package functions."""
