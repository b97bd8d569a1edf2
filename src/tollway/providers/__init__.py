"""The provider wire dialects: one module per dialect, one record each (dialect.py), one list (registry.py).

Everything the gateway knows about how a provider speaks on the wire lives here, below the upstream
call that uses it; docs/dialects.md has the map and the recipe for adding a dialect.
"""
