"""Loading desired state: discover files, render jinja2 templates, parse YAML with positions,
validate each document against its kind's model, and resolve references between resources.

Entry point: `reconciler.manifest.loader.load_estate`.

Called by: the CLI, reconciler.policy, and (later) the engine.
"""
