#!/usr/bin/env bash
# A two-namespace veth lab for trying sigwall by hand (root):
#   scripts/veth-lab.sh up      ipx namespace (peer side) and edge namespace joined by a veth pair
#   scripts/veth-lab.sh down    remove both namespaces (and so the pair)
# Then, e.g.:
#   nsenter --net=/run/netns/sw-lab-edge -- target/release/sigwall run --iface sw-lab-e --policy examples/policy.toml
#   sigwall stats --iface sw-lab-e
# nsenter (not `ip netns exec`) keeps the host's /sys/fs/bpf, so `sigwall stats --iface sw-lab-e` works from the host.
# Addresses are from 198.18.0.0/15 and 2001:db8::/32 only, with no default route.
set -euo pipefail
IPX=sw-lab-ipx EDGE=sw-lab-edge
case "${1:-}" in
up)
    ip netns add "$IPX"
    ip netns add "$EDGE"
    ip link add sw-lab-i netns "$IPX" type veth peer name sw-lab-e netns "$EDGE"
    ip -n "$IPX" addr add 198.18.0.1/24 dev sw-lab-i
    ip -n "$IPX" addr add 198.18.10.1/24 dev sw-lab-i          # partner-a in examples/policy.toml
    ip -n "$IPX" addr add 2001:db8::1/64 dev sw-lab-i nodad
    ip -n "$EDGE" addr add 198.18.0.2/24 dev sw-lab-e
    ip -n "$EDGE" addr add 2001:db8::2/64 dev sw-lab-e nodad
    for ns in "$IPX" "$EDGE"; do ip -n "$ns" link set lo up; done
    ip -n "$IPX" link set sw-lab-i up
    ip -n "$EDGE" link set sw-lab-e up
    echo "lab up: $IPX (sw-lab-i) <-> $EDGE (sw-lab-e)"
    ;;
down)
    ip netns del "$IPX" 2>/dev/null || true
    ip netns del "$EDGE" 2>/dev/null || true
    echo "lab removed"
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
