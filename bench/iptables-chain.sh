#!/bin/bash
# Per-packet cost of a long iptables chain (issue 12): a client namespace opens 300 TCP
# connections to a closed port of a server namespace whose INPUT jumps to a chain of N
# per-address rules (none matching), for iptables-nft and iptables-legacy. Root; only
# documentation addresses and 10.0.0.0/8 rules inside the namespaces.
set -e
S=pcb-s-$$; C=pcb-c-$$
trap 'ip netns del $S 2>/dev/null; ip netns del $C 2>/dev/null' EXIT
ip netns add $S; ip netns add $C
ip -n $S link add v0 type veth peer name v1 netns $C
ip -n $S addr add 192.0.2.1/24 dev v0; ip -n $C addr add 192.0.2.2/24 dev v1
ip -n $S link set v0 up; ip -n $C link set v1 up; ip -n $S link set lo up
sleep 1
for variant in nft legacy; do
for n in 0 1000 10000 50000; do
  { echo '*filter'; echo ':PORTCULLIS - [0:0]'; echo '-I INPUT 1 -j PORTCULLIS';
    python3 -c "
n=$n
for i in range(n):
    print('-A PORTCULLIS -s 10.%d.%d.%d/32 -p tcp -m multiport --dports 22 -m comment --comment sshd -j DROP' % (i>>16, (i>>8)&255, i&255))"
    echo COMMIT; } | ip netns exec $S iptables-$variant-restore
  # 300 connects to a closed port: each answered by a RST after walking INPUT
  s=$(date +%s%N)
  ip netns exec $C python3 -c "
import socket
for i in range(300):
    s=socket.socket(); s.settimeout(2)
    try: s.connect(('192.0.2.1', 22))
    except OSError: pass
    s.close()"
  e=$(date +%s%N)
  echo "iptables-$variant $n rules: $(( (e-s)/300000 )) us per connection attempt"
  printf '*filter\n-D INPUT -j PORTCULLIS\n-F PORTCULLIS\n-X PORTCULLIS\nCOMMIT\n' | ip netns exec $S iptables-$variant-restore --noflush
done; done
