"""recentd: the netfilter ``recent`` match (xt_recent) rebuilt in user space.

General layout (the flow is drawn in ``docs/architecture.md``):

- :mod:`recentd.sources` and :mod:`recentd.observation` — evidence in: producers of
  observations (log files, the journal, PAM, the fleet) and how they write the tables.
- :mod:`recentd.recent` — the sans-I/O core: recent tables with the kernel's exact
  semantics, their change feed, option validation, the ``/proc/net/xt_recent`` language.
- :mod:`recentd.rules` — the iptables rule language: parse, evaluate, render.
- :mod:`recentd.packets` — packet decoding, capture files, connection tracking.
- :mod:`recentd.live` — live traffic: NFQUEUE hooks and verdicts, the offload policy.
- :mod:`recentd.commands`, :mod:`recentd.enforcer`, :mod:`recentd.backends` — commands
  out: ban/unban values, the one guard that carries them out and holds ban state, and
  where bans live (nftables, an in-memory fake).
- :mod:`recentd.clock` — monotonic ticks, wall time and the mapping between them.
- :mod:`recentd.daemon` — the loop that joins them; :mod:`recentd.defaults` — every
  built-in default, once.
- :mod:`recentd.control`, :mod:`recentd.state` — the control socket and the /proc-like
  mount; persistence (tables, source checkpoints).
- :mod:`recentd.testing` — fakes and conformance suites, for recentd's adapters and
  third-party ones.
- :mod:`recentd.cli` — the ``recentd`` command.
"""

__version__ = "0.1.0"
