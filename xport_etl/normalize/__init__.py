"""Normalise: raw pages → typed rows and rejects; value rules, one module per source, a registry."""
