"""neodefense: open planetary-defence pipeline."""
__version__ = "0.1.0"
