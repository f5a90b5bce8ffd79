"""Catalogue module (registers experiments on import)."""
