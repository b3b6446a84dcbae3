# issue 16: matches and targets recentd renders exactly and leaves to the kernel
:INPUT,FORWARD,OUTPUT
-m addrtype --dst-type LOCAL -j ACCEPT;=;OK
-m addrtype --src-type LOCAL,BROADCAST ! --dst-type UNICAST -j ACCEPT;=;OK
-m addrtype ! --src-type LOCAL -j DROP;=;OK
-m pkttype --pkt-type broadcast -j DROP;=;OK
-m pkttype ! --pkt-type unicast -j DROP;=;OK
-m pkttype --pkt-type multicast -j DROP;=;OK
-p tcp --syn --dport 22 -m connlimit --connlimit-above 3 -j DROP;-p tcp -m tcp --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN -m connlimit --connlimit-above 3 --connlimit-mask 32 --connlimit-saddr -j DROP;OK
-p tcp -m connlimit --connlimit-upto 10 --connlimit-daddr -j ACCEPT;-p tcp -m connlimit --connlimit-upto 10 --connlimit-mask 32 --connlimit-daddr -j ACCEPT;OK
-p tcp -m connlimit ! --connlimit-above 3 --connlimit-mask 24 -j ACCEPT;-p tcp -m connlimit --connlimit-upto 3 --connlimit-mask 24 --connlimit-saddr -j ACCEPT;OK
-m statistic --mode random --probability 0.5 -j DROP;-m statistic --mode random --probability 0.50000000000 -j DROP;OK
-m statistic --mode random ! --probability 0.1 -j DROP;-m statistic --mode random ! --probability 0.10000000009 -j DROP;OK
-m statistic --mode nth --every 3 --packet 1 -j DROP;=;OK
-m statistic --mode nth --every 3 -j DROP;;FAIL
*nat
:POSTROUTING
-o eth0 -j MASQUERADE;=;OK
:PREROUTING
-p tcp --dport 80 -j REDIRECT --to-ports 8080;-p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080;OK
-p tcp --dport 80 -j REDIRECT --to-port 8080;-p tcp -m tcp --dport 80 -j REDIRECT --to-ports 8080;OK
-j REDIRECT --to-ports 8080;;FAIL
*raw
:PREROUTING,OUTPUT
-p udp --dport 53 -j CT --notrack;-p udp -m udp --dport 53 -j CT --notrack;OK
*mangle
:POSTROUTING
-p udp --dport 68 -j CHECKSUM --checksum-fill;-p udp -m udp --dport 68 -j CHECKSUM --checksum-fill;OK
