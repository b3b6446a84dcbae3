# issue 16: long options abbreviated as getopt_long takes them (unique prefixes only)
:INPUT,FORWARD,OUTPUT
-p tcp -m recent --update --second 500 --name X -j DROP;-p tcp -m recent --update --seconds 500 --name X --mask 255.255.255.255 --rsource -j DROP;OK
-p tcp -m recent --upd --sec 500 --hit 3 --na X -j DROP;-p tcp -m recent --update --seconds 500 --hitcount 3 --name X --mask 255.255.255.255 --rsource -j DROP;OK
-p tcp --dp 22 -j DROP;-p tcp -m tcp --dport 22 -j DROP;OK
-p tcp --destination-p 22 -j DROP;-p tcp -m tcp --dport 22 -j DROP;OK
-p tcp -m state --sta NEW -j DROP;-p tcp -m state --state NEW -j DROP;OK
--proto tcp --dport 22 -j DROP;-p tcp -m tcp --dport 22 -j DROP;OK
--sou 1.2.3.4 --jump DROP;-s 1.2.3.4/32 -j DROP;OK
-m limit --limit 3/min --limit-b 5 -j ACCEPT;-m limit --limit 3/min -j ACCEPT;OK
-j LOG --log-p foo;-j LOG --log-prefix foo;OK
# ambiguous: --set, --seconds, --set-counters, --source…; --insert, --in-interface
-p tcp -m recent --s --name X;;FAIL
--in lo -j DROP;;FAIL
