"""Logins tell recentd: pam_recent's idea, with the daemon keeping the lists.

- :mod:`recentd.pam.hook` — ``recentd-pam-hook``, the program sshd's PAM stack runs
  through ``pam_exec`` at each session opening and closing (docs/pam.md).
- :mod:`recentd.pam.address` — the client's address from the PAM environment.
- :mod:`recentd.pam.policy` — what a login does to the lists (``+LIST`` / ``-LIST``).

This file imports nothing: the hook runs on every login and must start fast.
"""
