"""Configuration: the typed schemas (every default once) and the checks run before any work."""
