"""`python -m reconciler` runs the recon command line."""

from reconciler.cli import main

main()
