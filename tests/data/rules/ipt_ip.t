:INPUT,FORWARD,OUTPUT
-s 10.0.0.0/8;=;OK
-s 10.1.2.3;-s 10.1.2.3/32;OK
! -s 10.1.2.3/32;=;OK
-d 192.168.0.0/16 -j DROP;=;OK
! -d 192.168.1.0/255.255.255.0;! -d 192.168.1.0/24;OK
-s 1.2.3.4/255.0.255.0;-s 1.0.3.0/255.0.255.0;OK
-s 0.0.0.0/0;;OK
-s 10.0.0.1/0;;OK
-p tcp;=;OK
-p TCP;-p tcp;OK
! -p udp;=;OK
-p 47;-p gre;OK
-p all;;OK
-p 0;;OK
-p 255;=;OK
-p sctp;=;OK
-p icmp -f;=;OK
-p udp ! -f;=;OK
-f;=;OK
-p foo;;FAIL
-p 256;;FAIL
-s 1.2.3;-s 1.2.3.0/32;OK
-s 1.2.3.4/33;;FAIL
-s example.invalid;;FAIL
-j ACCEPT;=;OK
-j DROP;=;OK
-j RETURN;=;OK
-j NOSUCHTARGET;;FAIL
-s 10.0.0.1 -d 10.0.0.2 -p tcp -j ACCEPT;-s 10.0.0.1/32 -d 10.0.0.2/32 -p tcp -j ACCEPT;OK
! -s 10.0.0.0/8 ! -d 10.0.0.0/8 ! -p tcp;=;OK
:INPUT,FORWARD
-i eth0;=;OK
-i eth+;=;OK
! -i lo;=;OK
! -i eth+ -s 10.0.0.0/8;-s 10.0.0.0/8 ! -i eth+;OK
-i abcdefghijklmnopq;;FAIL
:FORWARD,OUTPUT
-o eth1;=;OK
! -o ppp+;=;OK
:OUTPUT
-i eth0;;FAIL
:INPUT
-o eth0;;FAIL
:INPUT,FORWARD,OUTPUT
-s 1.1.1.1,2.2.2.2;-s 1.1.1.1/32 ||| -s 2.2.2.2/32;OK
-s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4 -j ACCEPT;-s 1.1.1.1/32 -d 3.3.3.3/32 -j ACCEPT ||| -s 1.1.1.1/32 -d 4.4.4.4/32 -j ACCEPT ||| -s 2.2.2.2/32 -d 3.3.3.3/32 -j ACCEPT ||| -s 2.2.2.2/32 -d 4.4.4.4/32 -j ACCEPT;OK
! -d 10.0.0.0/8,172.16.0.0/12;;FAIL
-s 1.2;-s 1.2.0.0/32;OK
-d 10;-d 10.0.0.0/32;OK
-s 1.2.3.4 -s 5.6.7.8;;FAIL
-p tcp -p udp;;FAIL
! ! -s 1.2.3.4;;FAIL
-s 10.0.0.0/8 !;;FAIL
-j ACCEPT -j DROP;;FAIL
-p tcp -m tcp -m state --state NEW --dport 22;-p tcp -m tcp --dport 22 -m state --state NEW;OK
-m state --state NEW -p tcp --dport 22 -m tcp --sport 5;-p tcp -m state --state NEW -m tcp --dport 22 -m tcp --sport 5;OK
:FORWARD
-i eth0 -o eth1 -j ACCEPT;=;OK
-i eth0 ! -o eth+ -p tcp --dport 80;-i eth0 ! -o eth+ -p tcp -m tcp --dport 80;OK
