"""Output formats: text for people, JSON for tools, SARIF for code scanning (and, with the
engine, Markdown for pull-request comments). Renderers are pure: data in, text out.

Called by: the CLI.
"""
