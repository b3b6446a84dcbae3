# issue 16: NAT targets, left to the kernel
*nat
:POSTROUTING
-o eth0 -j SNAT --to-source 192.0.2.1;=;OK
-p tcp -o eth0 -j SNAT --to-source 192.0.2.1-192.0.2.9:1000-2000 --random --persistent;-o eth0 -p tcp -j SNAT --to-source 192.0.2.1-192.0.2.9:1000-2000 --random --persistent;OK
-j SNAT --to-source 192.0.2.1:1000;;FAIL
-j SNAT;;FAIL
-j MASQUERADE --random;=;OK
-p tcp -j MASQUERADE --to-ports 1000-2000 --random-fully;=;OK
-o eth0 -j MASQUERADE --to-ports 1000-2000 --random;;FAIL
:PREROUTING
-p tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080;-p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8080;OK
-p tcp --dport 80 -j DNAT --to 10.0.0.1;-p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1;OK
-p tcp -j REDIRECT --to-ports 8080-8090 --random;=;OK
-j DNAT --to-destination 10.0.0.300;;FAIL
*filter
:INPUT
-j MASQUERADE;;FAIL
