"""Helpers for testing recentd and its third-party adapters, shipped in the package.

As trio ships its stream conformance tests, recentd ships what an adapter needs to prove
itself: fakes that implement each interface in memory, and the conformance suites the
real adapters also pass.

- :mod:`recentd.testing.sources`: :class:`~recentd.testing.sources.ListSource` and
  :func:`~recentd.testing.sources.check_source`, run against every source: log files,
  the journal, stdin, capture files, and the live queue (in a private network
  namespace, with real packets);
- :mod:`recentd.testing.backends`: :func:`~recentd.testing.backends.check_backend`, run
  against :class:`recentd.backends.memory.MemoryBanBackend` (the fake) and the nftables
  backend (in a private network namespace);
- :mod:`recentd.testing.clock`: :class:`~recentd.testing.clock.FakeClock`, a
  :class:`recentd.clock.Clock` that moves only when told to.
"""
