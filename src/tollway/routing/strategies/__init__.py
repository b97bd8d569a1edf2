"""Routing strategies: one module each (its options, its rank step, what explain and replay show of it),
named in registry.py. base.py says what a strategy is."""
