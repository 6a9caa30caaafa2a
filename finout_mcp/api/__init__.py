"""The Finout API layer: settings-driven async client, typed errors and models.

Import from the submodules (``finout_mcp.api.client``, ``.errors``, ``.models``): this package
imports nothing itself, so a module that needs only the errors does not load httpx.
"""
