"""Rule packs. Each module registers its rules when imported (see reconciler.policy)."""
