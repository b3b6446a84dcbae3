:INPUT,FORWARD,OUTPUT
-p ipv6-icmp --icmpv6-type echo-request;-p ipv6-icmp -m icmp6 --icmpv6-type 128;OK
-p icmpv6 --icmpv6-type 128;-p ipv6-icmp -m icmp6 --icmpv6-type 128;OK
-p icmpv6 --icmpv6-type 1/3;-p ipv6-icmp -m icmp6 --icmpv6-type 1/3;OK
-p icmpv6 --icmpv6-type neighbour-solicitation;-p ipv6-icmp -m icmp6 --icmpv6-type 135;OK
-p icmpv6 ! --icmpv6-type router-advertisement -j DROP;-p ipv6-icmp -m icmp6 ! --icmpv6-type 134 -j DROP;OK
-p icmpv6 --icmpv6-type nosuchtype;;FAIL
-p icmpv6 --icmp-type 8;;FAIL
-p icmp --icmpv6-type 128;;FAIL
