#!/bin/bash
# Per-packet cost of a long iptables chain (issue 12): a client namespace opens 300 TCP
# connections to a closed port of a server namespace whose INPUT jumps to a chain of N
# per-address rules (none matching), for iptables-nft and iptables-legacy. Root; only
# documentation addresses inside the namespaces (IPv6, 2001:db8::/32: the rules need
# more addresses than the IPv4 documentation ranges hold).
set -e
S=pcb-s-$$; C=pcb-c-$$
trap 'ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null' EXIT
ip netns add $S; ip netns add $C
ip -n $S link add v0 type veth peer name v1 netns $C
ip -n $S addr add 2001:db8::1/64 dev v0 nodad; ip -n $C addr add 2001:db8::2/64 dev v1 nodad
ip -n $S link set v0 up; ip -n $C link set v1 up; ip -n $S link set lo up
sleep 1
for variant in nft legacy; do
for n in 0 1000 10000 50000; do
  { echo '*filter'; echo ':PORTCULLIS - [0:0]'; echo '-I INPUT 1 -j PORTCULLIS';
    python3 -c "
n=$n
for i in range(n):
    print('-A PORTCULLIS -s 2001:db8:1::%x/128 -p tcp -m multiport --dports 22 -m comment --comment sshd -j DROP' % i)"
    echo COMMIT; } | ip netns exec $S ip6tables-$variant-restore
  # 300 connects to a closed port: each answered by a RST after walking INPUT
  s=$(date +%s%N)
  ip netns exec $C python3 -c "
import socket
for i in range(300):
    s=socket.socket(socket.AF_INET6); s.settimeout(2)
    try: s.connect(('2001:db8::1', 22))
    except OSError: pass
    s.close()"
  e=$(date +%s%N)
  echo "ip6tables-$variant $n rules: $(( (e-s)/300000 )) us per connection attempt"
  printf '*filter\n-D INPUT -j PORTCULLIS\n-F PORTCULLIS\n-X PORTCULLIS\nCOMMIT\n' | ip netns exec $S ip6tables-$variant-restore --noflush
done; done
