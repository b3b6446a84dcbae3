:INPUT,FORWARD,OUTPUT
-p udp --dport 53;-p udp -m udp --dport 53;OK
-p udp --sport 53;-p udp -m udp --sport 53;OK
-p udp -m udp --dport 53;=;OK
-p udp ! --dport 53;-p udp -m udp ! --dport 53;OK
-p udp --sport 1:2 ! --dport 53;-p udp -m udp --sport 1:2 ! --dport 53;OK
-p udp --dport domain;-p udp -m udp --dport 53;OK
-p udp --dport 5000:6000 -j DROP;-p udp -m udp --dport 5000:6000 -j DROP;OK
-p udp --tcp-flags SYN SYN;;FAIL
-p tcp -m udp --dport 53;;FAIL
