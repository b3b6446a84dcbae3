:INPUT,FORWARD,OUTPUT
-j REJECT;-j REJECT --reject-with icmp-port-unreachable;OK
-j REJECT --reject-with icmp-host-prohibited;=;OK
-j REJECT --reject-with icmp-admin-prohibited;=;OK
-j REJECT --reject-with host-unreach;-j REJECT --reject-with icmp-host-unreachable;OK
-j REJECT --reject-with icmp-net-prohibited;=;OK
-p tcp -j REJECT --reject-with tcp-reset;=;OK
-j REJECT --reject-with tcp-reset;;FAIL
-j REJECT --reject-with icmp6-port-unreachable;;FAIL
-j REJECT --reject-with bogus;;FAIL
-j LOG;=;OK
-j LOG --log-prefix "SSH: ";=;OK
-j LOG --log-prefix SSH;=;OK
-j LOG --log-level debug --log-prefix "SSH: " --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid;-j LOG --log-prefix "SSH: " --log-level 7 --log-tcp-sequence --log-tcp-options --log-ip-options --log-uid;OK
-j LOG --log-level 7 --log-macdecode;=;OK
-j LOG --log-level warning;-j LOG;OK
-j LOG --log-level 8;;FAIL
-j LOG --log-prefix "0123456789012345678901234567890";-j LOG --log-prefix 01234567890123456789012345678;OK
-j NFLOG;=;OK
-j NFLOG --nflog-group 3;=;OK
-j NFLOG --nflog-group 3 --nflog-prefix "p q" --nflog-threshold 2;-j NFLOG --nflog-prefix "p q" --nflog-group 3 --nflog-threshold 2;OK
-j NFLOG --nflog-prefix ssh;=;OK
-j MARK --set-mark 1;-j MARK --set-xmark 0x1/0xffffffff;OK
-j MARK --set-mark 1/0xff;-j MARK --set-xmark 0x1/0xff;OK
-j MARK --set-xmark 1/0xff;-j MARK --set-xmark 0x1/0xff;OK
-j MARK --and-mark 0xf0;-j MARK --set-xmark 0x0/0xffffff0f;OK
-j MARK --or-mark 0xf0;-j MARK --set-xmark 0xf0/0xf0;OK
-j MARK --xor-mark 0xf0;-j MARK --set-xmark 0xf0/0x0;OK
-j MARK;;FAIL
-j CONNMARK --set-mark 1;-j CONNMARK --set-xmark 0x1/0xffffffff;OK
-j CONNMARK --set-xmark 1/3;-j CONNMARK --set-xmark 0x1/0x3;OK
-j CONNMARK --save-mark;-j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff;OK
-j CONNMARK --restore-mark;-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff;OK
-j CONNMARK --restore-mark --mask 0xff;-j CONNMARK --restore-mark --nfmask 0xff --ctmask 0xff;OK
-j CONNMARK --save-mark --nfmask 0xf --ctmask 0xf0;=;OK
-j CONNMARK --and-mark 0xf;-j CONNMARK --set-xmark 0x0/0xfffffff0;OK
-j CONNMARK;;FAIL
-j ACCEPT --reject-with tcp-reset;;FAIL
-j MASQUERADE;;FAIL
*mangle
:PREROUTING,INPUT,FORWARD,OUTPUT,POSTROUTING
-j MARK --set-mark 7;-j MARK --set-xmark 0x7/0xffffffff;OK
-j CONNMARK --restore-mark;-j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff;OK
-p tcp --dport 22 -j MARK --set-xmark 0x2/0xff;-p tcp -m tcp --dport 22 -j MARK --set-xmark 0x2/0xff;OK
-j REJECT;;FAIL
*raw
:PREROUTING,OUTPUT
-p tcp --dport 22 -j ACCEPT;-p tcp -m tcp --dport 22 -j ACCEPT;OK
-j DROP;=;OK
