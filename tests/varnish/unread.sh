#!/bin/sh
# Prints `unread=N`: the bytes waiting, unread, in the receive queues of the established TCP
# connections whose local port is $1 (the scripted origin's side), read from /proc/net/tcp.
port=$(printf '%04X' "$1")
n=0
for q in $(awk -v p="$port" '
    NR > 1 && $4 == "01" && substr($2, index($2, ":") + 1) == p {
        split($5, q, ":"); print q[2]
    }' /proc/net/tcp); do
    n=$((n + 0x$q))
done
echo "unread=$n"
