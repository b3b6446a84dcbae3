:INPUT,FORWARD,OUTPUT
-m state --state NEW;=;OK
-m state --state ESTABLISHED,RELATED;-m state --state RELATED,ESTABLISHED;OK
-m state --state ESTABLISHED,RELATED,NEW,INVALID,UNTRACKED;-m state --state INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED;OK
-m state ! --state NEW;=;OK
-m state --state new;-m state --state NEW;OK
-m state --state BOGUS;;FAIL
-m state;;FAIL
-m conntrack --ctstate NEW,ESTABLISHED;=;OK
-m conntrack ! --ctstate INVALID;=;OK
-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT;=;OK
-m conntrack --ctstate FOO;;FAIL
# issue 16: NAT states, conntrack only
-m conntrack --ctstate SNAT,DNAT;=;OK
-m conntrack --ctstate DNAT,NEW;-m conntrack --ctstate NEW,DNAT;OK
-m conntrack ! --ctstate SNAT;=;OK
-m state --state SNAT;;FAIL
