"""What the daemon did, for people and for Prometheus.

Rules of this package:

1. The hot path counts in plain integers where it already counts (the pipeline's
   :class:`~recentd.live.verdict.Counters`, a table's ``evictions``, the store's
   ``writes``); nothing here is called per packet. The exposition reads those counts
   when it is scraped (:mod:`recentd.metrics.collector`, a custom collector).
2. Counters never reset while the daemon runs: what outlives a reload (the enforcer is
   rebuilt on SIGHUP) is tallied here, in :class:`~recentd.metrics.tally.Tally`, which the
   daemon owns for its whole life.
3. No address is ever a label (cardinality): lists, origins (their first word:
   ``packet``, ``observation``, ``restore``, ``timer``), hooks, verdicts and sources are.
4. :mod:`recentd.metrics.tally` is pure (no prometheus-client import): the daemon, the
   store and ``recentd top`` use it without the ``metrics`` extra.
"""
