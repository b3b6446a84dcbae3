# issue 16: IPv6 forms of what is left to the kernel
:INPUT,FORWARD,OUTPUT
-m rt --rt-type 0 -j DROP;=;OK
-m rt --rt-type 0 --rt-segsleft 0 -j DROP;=;OK
-m rt --rt-type 2 ! --rt-segsleft 1:3 --rt-len 4 -j DROP;=;OK
-m rt ! --rt-len 4;=;OK
-m set --match-set bl6 src -j DROP;=;OK
-m addrtype --dst-type MULTICAST -j DROP;=;OK
-p tcp -m connlimit --connlimit-above 3 -j DROP;-p tcp -m connlimit --connlimit-above 3 --connlimit-mask 128 --connlimit-saddr -j DROP;OK
*nat
:PREROUTING
-p tcp --dport 80 -j DNAT --to-destination [2001:db8::1]:8080;-p tcp -m tcp --dport 80 -j DNAT --to-destination [2001:db8::1]:8080;OK
:POSTROUTING
-j SNAT --to-source 2001:db8::1-2001:db8::5;=;OK
-o eth0 -j MASQUERADE;=;OK
*mangle
:PREROUTING
-j HL --hl-set 64;=;OK
-j HL --hl-dec 1;=;OK
-j TTL --ttl-set 64;;FAIL
