"""The fleet: hosts share bans through Redis (or Valkey). See docs/fleet.md.

Modules, pure first:

- :mod:`~recentd.fleet.events`: the event format and its validation (a peer's message is
  untrusted input);
- :mod:`~recentd.fleet.merge`: which remote ban a host adopts (latest expiry wins, unbans,
  per-origin caps, quorum);
- :mod:`~recentd.fleet.settings`: the ``[fleet]`` config table;
- :mod:`~recentd.fleet.outbox`: this host's events, kept on disk until Redis has them;
- :mod:`~recentd.fleet.link`: the adapter — a :class:`~recentd.sources.Source` of remote
  bans and the publisher of local ones (the ``redis`` package, the ``fleet`` extra).

The package's ``__init__`` imports nothing: the pure modules load without ``redis``.
"""
