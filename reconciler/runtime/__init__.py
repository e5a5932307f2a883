"""The embedded runtime: the jobs recon does while calls are live.

It stamps each recorded trading call with the market data in force when the call started
and binds what it attached into a tamper-evident evidence log (`reconciler.runtime.evidence`).
Subpackages add the snapshot injector and capture verification.

Layering: the runtime may import engine, state, manifest and providers; nothing below the
CLI imports the runtime (import-linter contract in pyproject.toml).

Called by: reconciler.cli.
"""
