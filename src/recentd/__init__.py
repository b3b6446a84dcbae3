"""recentd: the netfilter ``recent`` match (xt_recent) rebuilt in user space.

General layout:

- :mod:`recentd.recent` — the sans-I/O core: recent tables with the kernel's exact
  semantics, option validation, the ``/proc/net/xt_recent`` language.
- :mod:`recentd.rules` — the iptables rule language: parse, evaluate, render.
- :mod:`recentd.packets` — packet decoding, capture files, connection tracking.
- :mod:`recentd.live` — adapters for live traffic (NFQUEUE, nftables offload).
- :mod:`recentd.control` — the control socket, persistence, the /proc-like mount.
- :mod:`recentd.cli` — the ``recentd`` command.
"""

__version__ = "0.1.0"
