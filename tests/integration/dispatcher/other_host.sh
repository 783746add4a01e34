#!/bin/sh
# Run CMD as if on another host NAME: under `unshare --uts --mount`, set the
# host name and bind a copy of /etc/hosts that resolves it (a worker whose
# host name does not resolve reports garbage to the manager in cctools 8.0).
# usage: unshare --uts --mount other_host.sh NAME CMD...
name=$1; shift
hosts=$(mktemp)
{ cat /etc/hosts; echo "127.0.1.77 $name"; } > "$hosts"
mount --bind "$hosts" /etc/hosts
hostname "$name"
exec "$@"
