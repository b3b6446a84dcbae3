"""Runs inside the client namespace: sends a plan of raw Ethernet frames.

Usage: python sender.py IFNAME PLAN.json — PLAN is a list of [delay_s, frame_hex];
each frame is sent ``delay_s`` after the previous one (busy-waiting the last
millisecond, so gaps are accurate to well under a jiffy).
"""

import json
import socket
import sys
import time


def main() -> None:
    ifname, plan_path = sys.argv[1], sys.argv[2]
    with open(plan_path) as plan_file:
        plan = json.load(plan_file)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((ifname, 0))
    due = time.monotonic()
    for delay, frame_hex in plan:
        due += delay
        while (remaining := due - time.monotonic()) > 0.001:
            time.sleep(remaining - 0.001)
        while time.monotonic() < due:
            pass
        sock.send(bytes.fromhex(frame_hex))
    sock.close()


if __name__ == "__main__":
    main()
