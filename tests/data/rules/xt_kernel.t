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
*filter
:INPUT,FORWARD,OUTPUT
-p tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1:500 -j DROP;-p tcp -m tcp --tcp-flags SYN,RST SYN -m tcpmss --mss 1:500 -j DROP;OK
-p tcp -m tcpmss ! --mss 1400 -j DROP;=;OK
-m string --string foo --algo bm -j DROP;-m string --string "foo" --algo bm -j DROP;OK
-m string --algo kmp --string "GET /" --from 40 --to 80 -j DROP;-m string --string "GET /" --algo kmp --from 40 --to 80 -j DROP;OK
-m string --algo bm ! --string foo --icase -j DROP;-m string ! --string "foo" --algo bm --icase -j DROP;OK
-m string --algo bm --hex-string "|00 01|abc" -j DROP;-m string --hex-string "|0001616263|" --algo bm -j DROP;OK
-m string --string foo -j DROP;;FAIL
-m u32 --u32 "0>>22&0x3C@12>>26&0x3F=0x10" -j DROP;-m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3f=0x10" -j DROP;OK
-m u32 ! --u32 "6&0xFF=1" -j DROP;-m u32 ! --u32 "0x6&0xff=0x1" -j DROP;OK
-m u32 --u32 "0 >> 22 & 0x3C @ 12 >> 26 & 0x3F = 0x10 && 6&0xFF=1:3,5" -j DROP;-m u32 --u32 "0x0>>0x16&0x3c@0xc>>0x1a&0x3f=0x10&&0x6&0xff=0x1:0x3,0x5" -j DROP;OK
-m set --match-set bl src -j DROP;=;OK
-m set ! --match-set bl src,dst -j DROP;=;OK
-m set --match-set bl src --return-nomatch ! --update-counters ! --update-subcounters -j DROP;=;OK
-m set --match-set bl src --packets-gt 5;=;OK
-j SET --add-set bl src;=;OK
-j SET --add-set bl src --exist --timeout 600;=;OK
-j SET --del-set bl src,dst;=;OK
:INPUT,FORWARD
-p tcp -m tcp --dport 80 -m state --state INVALID,UNTRACKED -j SYNPROXY --sack-perm --timestamp --wscale 7 --mss 1460;=;OK
-p tcp -j SYNPROXY;=;OK
-j SYNPROXY;;FAIL
:OUTPUT
-p tcp -j SYNPROXY;;FAIL
*raw
:PREROUTING,OUTPUT
-p udp --dport 53 -j NOTRACK;-p udp -m udp --dport 53 -j NOTRACK;OK
-j CT --zone 1;=;OK
*mangle
:PREROUTING,POSTROUTING
-j TTL --ttl-set 64;=;OK
-j TTL --ttl-inc 1;=;OK
-j TTL --ttl-dec 1;=;OK
*security
:INPUT,FORWARD,OUTPUT
-j ACCEPT;=;OK
-p tcp -j DROP;=;OK
