#!/usr/bin/env bash
# Set up recentd on a fresh Debian 12 machine: system packages, then a virtual
# environment in .venv with recentd and all its extras. Idempotent; run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc pkg-config   # build recentd's C file (logs/_bulk.c), NetfilterQueue, pyfuse3
  iproute2 iptables nftables ipset conntrack tcpdump  # the kernel's tools, used by tests and the daemon
  libnetfilter-queue-dev libnfnetlink-dev             # NetfilterQueue
  libnftables1                                        # nftables JSON API (pip-nftables loads it)
  fuse3 libfuse3-dev                                  # the /proc-like mount (pyfuse3)
  pamtester libpam-wrapper                            # the PAM hook's tests: a real PAM stack
  libsystemd-dev                                      # systemd-python (the journal source)
  systemd-journal-remote                              # tests: journal files built from export format
  tmux                                                # tests: recentd top driven in a real terminal
  prometheus                                          # promtool check metrics (tests; ~96 MB: the only Debian package with promtool)
  chromium-headless-shell                             # tests: the HTML report in a real headless Chromium (smaller than chromium)
  redis-server                                        # tests: the fleet's store (started by the tests)
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[all,dev,bench]"
echo "setup: done ($(.venv/bin/recentd --version))"
