"""The snapshot injection path: stamp each recorded trading call with the market data in force
when it started.

Feeds fetch a snapshot within the call-start time budget, a circuit breaker keeps a failing
feed from holding calls up, the guard (`guard`, with `pii`) validates the payload against a
strict schema and drops personal data, and the injector attaches the result to the recording
as conversation attributes.

Called by: reconciler.runtime (the embedded runtime).
"""
