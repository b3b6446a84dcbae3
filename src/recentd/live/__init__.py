"""Live traffic: NFQUEUE hooks (:mod:`~recentd.live.hooks`), the raw-netlink queue
(:mod:`~recentd.live.nfqueue`), the verdict pipeline (:mod:`~recentd.live.verdict`) and
the offload policy deciding which drops the kernel may carry (:mod:`~recentd.live.policy`)."""
