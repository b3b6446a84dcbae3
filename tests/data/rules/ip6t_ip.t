:INPUT,FORWARD,OUTPUT
-s 2001:db8::/32;=;OK
-d fd77::1;-d fd77::1/128;OK
! -s fd77::2/128 -j DROP;=;OK
-s fd77::/ffff:ffff::;-s fd77::/32;OK
-p tcp --dport 22 -s ::/0;-p tcp -m tcp --dport 22;OK
-p udp -f;;FAIL
-s 10.0.0.1;;FAIL
-p tcp --dport 22 -j REJECT;-p tcp -m tcp --dport 22 -j REJECT --reject-with icmp6-port-unreachable;OK
-j REJECT --reject-with icmp6-adm-prohibited;=;OK
-j REJECT --reject-with adm-prohibited;-j REJECT --reject-with icmp6-adm-prohibited;OK
-j REJECT --reject-with icmp6-no-route;=;OK
-j REJECT --reject-with icmp6-addr-unreachable;=;OK
-j REJECT --reject-with icmp-port-unreachable;;FAIL
-p tcp -j REJECT --reject-with tcp-reset;=;OK
-m hl --hl-eq 64;=;OK
-m hl ! --hl-eq 64;=;OK
-m hl --hl-lt 3;=;OK
-m hl --hl-gt 4;=;OK
-m ttl --ttl-eq 5;;FAIL
-m recent --rcheck --seconds 60 --name SSH;-m recent --rcheck --seconds 60 --name SSH --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource;OK
-m recent --set --mask ffff:ffff::;-m recent --set --name DEFAULT --mask ffff:ffff:: --rsource;OK
-m recent --set --mask 255.255.255.0;;FAIL
-m iprange --src-range fd77::1-fd77::9;=;OK
-m hashlimit --hashlimit-above 2/sec --hashlimit-name HL6 --hashlimit-mode srcip;-m hashlimit --hashlimit-above 2/sec --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-name HL6;OK
-m hashlimit --hashlimit-upto 5/min --hashlimit-name HL6b --hashlimit-mode srcip --hashlimit-srcmask 64;-m hashlimit --hashlimit-upto 5/min --hashlimit-burst 5 --hashlimit-mode srcip --hashlimit-name HL6b --hashlimit-srcmask 64;OK
-m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH6 -j DROP;-m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name SSH6 --mask ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff --rsource -j DROP;OK
# issue 16: the old spelling of --hl-eq
:INPUT,FORWARD,OUTPUT
-m hl --hl 5;-m hl --hl-eq 5;OK
# issue 16: addresses as inet_ntop writes them (embedded IPv4)
-s ::ffff:192.0.2.1;-s ::ffff:192.0.2.1/128;OK
-s ::1.2.3.4;-s ::1.2.3.4/128;OK
-d ::ffff:0:0;-d ::ffff:0.0.0.0/128;OK
-d ::ffff:1:2:3;-d ::ffff:1:2:3/128;OK
