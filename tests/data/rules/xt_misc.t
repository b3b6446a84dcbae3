:INPUT,FORWARD,OUTPUT
-m iprange --src-range 10.0.0.1-10.0.0.9;=;OK
-m iprange ! --dst-range 1.1.1.1-1.1.1.2;=;OK
-m iprange --src-range 10.0.0.1-10.0.0.9 ! --dst-range 1.1.1.1-1.1.1.2;=;OK
-m iprange --src-range 10.0.0.1;-m iprange --src-range 10.0.0.1-10.0.0.1;OK
-m iprange --src-range 10.0.0.x-10.0.0.9;;FAIL
-m comment --comment hello;=;OK
-m comment --comment "a b";=;OK
-m comment --comment "it's";-m comment --comment "it\'s";OK
-m comment --comment 'say "hi"';-m comment --comment "say \"hi\"";OK
-m comment --comment "SSH brute-force guard" -p tcp --dport 22 -j ACCEPT;-p tcp -m comment --comment "SSH brute-force guard" -m tcp --dport 22 -j ACCEPT;OK
-m comment;;FAIL
-m ttl --ttl-eq 5;=;OK
-m ttl ! --ttl-eq 5;=;OK
-m ttl --ttl-lt 5;=;OK
-m ttl --ttl-gt 5;=;OK
-m ttl --ttl-eq 256;;FAIL
-m ttl ! --ttl-lt 5;;FAIL
-m ttl --ttl-eq 1 --ttl-gt 2;;FAIL
-m length --length 100:200;=;OK
-m length ! --length 100;=;OK
-m length --length 1500;=;OK
-m length --length 65536;;FAIL
-m mark --mark 0x1;=;OK
-m mark --mark 1;-m mark --mark 0x1;OK
-m mark ! --mark 5/0xff;-m mark ! --mark 0x5/0xff;OK
-m mark --mark 0x10/0xf0 -j DROP;=;OK
-m mark --mark 0x100000000;;FAIL
-m hl --hl-eq 5;;FAIL
-m foo;;FAIL
-p tcp --dport 22 -m recent --set --name SSH -m recent --update --seconds 60 --hitcount 4 --name SSH -j DROP;-p tcp -m tcp --dport 22 -m recent --set --name SSH --mask 255.255.255.255 --rsource -m recent --update --seconds 60 --hitcount 4 --name SSH --mask 255.255.255.255 --rsource -j DROP;OK
# issue 16: a bare + names every interface, so iptables keeps no interface test
:INPUT
-i + -j ACCEPT;-j ACCEPT;OK
! -i + -j ACCEPT;-j ACCEPT;OK
-i eth+ -j ACCEPT;=;OK
:OUTPUT
-o + -j ACCEPT;-j ACCEPT;OK
-i + -j ACCEPT;;FAIL
:INPUT,FORWARD,OUTPUT
# a comment longer than 255 bytes is cut to 255, silently
-m comment --comment AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;-m comment --comment AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA;OK
# the old spelling of --ttl-eq
-m ttl --ttl 64;-m ttl --ttl-eq 64;OK
-m ttl ! --ttl 64;-m ttl ! --ttl-eq 64;OK
