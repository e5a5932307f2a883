"""An embedded Genesys-Cloud-API-compatible server on loopback, for tests and the demo.

May import reconciler.errors and anything below it; never reconciler.cli.
"""

from reconciler.sandbox.genesys_server import GenesysSandbox

__all__ = ["GenesysSandbox"]
