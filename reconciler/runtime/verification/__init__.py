"""Capture verification: prove every trading call the switch saw was recorded.

Collectors read call detail records (CDRs) from the trading switch's TradeSense WBA endpoints
(one logical source per primary/secondary pair, cursors checkpointed in the embedded store),
the matcher ties CDRs to the recording platform's recordings in both directions, and reports
and alerts say which calls were not recorded, partly recorded, or recorded without a CDR.

Called by: reconciler.cli (`recon verify`, `recon runtime`), bench/bench_verify.py.
"""
