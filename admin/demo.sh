#!/usr/bin/env bash
# admin/demo.sh BUILD HOME: what `make run` does.
#
# On first use, makes a demo appliance under HOME (var/demo): volume vol0 on
# five sparse disk images with double parity, exported to 127.0.0.1
# read-write, without root squashing and from any source port, so a local
# root client (nfs-cp, the kernel client) can write.  Then it starts filerd
# in the foreground on HOME and prints how to reach it.  Ctrl-C stops filerd
# cleanly (final consistency point); the next run reuses the volume and its
# data.
#
# The ports are the configured ones (settings nfs_port, mount_port).  If one
# of them is taken by another program (a kernel NFS server on 2049, say),
# free ones are chosen, stored in the settings and announced; rpcbind is
# then left alone (nfs_rpcbind false) so the other server's registration
# stays.
set -eu

build=${1:-build}
home=${2:-var/demo}
ctl() { "$build/filerctl" --home "$home" "$@"; }

mkdir -p "$home"
if ctl stats >/dev/null 2>&1; then
	pid=$(cat "$home/filerd.pid" 2>/dev/null || echo '?')
	echo "make run: filerd already runs on $home (pid ${pid%%[[:space:]]*});" \
	    "stop it with Ctrl-C in its terminal or kill -TERM PID" >&2
	exit 1
fi

if ! ctl vol status vol0 >/dev/null 2>&1; then
	echo "make run: creating the demo volume vol0 in $home"
	ctl vol create vol0 --disks 5 --parity 2 --size 256M >/dev/null
fi
if ! ctl --json export list |
    grep -q '"path": "/vol/vol0"[^}]*"client": "127.0.0.1"'; then
	ctl export add /vol/vol0 --client 127.0.0.1 --rw --squash none \
	    --insecure >/dev/null
fi

setting() {
	ctl --json config get "$1" |
	    sed -n 's/.*"value": "\([^"]*\)".*/\1/p'
}
# Something listens on 127.0.0.1:$1 (TCP)?  filerd is not running here.
port_taken() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
nfs_port=$(setting nfs_port)
mount_port=$(setting mount_port)
if port_taken "$nfs_port" || port_taken "$mount_port" ||
    [ "$nfs_port" = "$mount_port" ]; then
	old="$nfs_port/$mount_port"
	for p in $(seq 12049 2 12199); do
		if ! port_taken "$p" && ! port_taken $((p + 1)); then
			nfs_port=$p
			mount_port=$((p + 1))
			break
		fi
	done
	ctl config set nfs_port "$nfs_port" >/dev/null
	ctl config set mount_port "$mount_port" >/dev/null
	ctl config set nfs_rpcbind false >/dev/null
	echo "make run: port(s) $old in use by another program (a kernel NFS" \
	    "server?); filerd takes nfs_port $nfs_port and mount_port" \
	    "$mount_port instead and leaves rpcbind alone (settings in" \
	    "$home/filer.db; change with $build/filerctl --home $home" \
	    "config set nfs_port N)"
fi

url="nfs://127.0.0.1/vol/vol0"
args="?nfsport=$nfs_port&mountport=$mount_port"
cat <<EOF

filer demo appliance: home $home, volume vol0 (5 disks, double parity)
NFS v3 on port $nfs_port, MOUNT v3 on port $mount_port; /vol/vol0 exported to 127.0.0.1

  once filerd logs "filerd ready" below: list, copy in, copy out (libnfs-utils):
    nfs-ls '$url$args'
    nfs-cp /etc/os-release '$url/os-release$args'
    nfs-cp '$url/os-release$args' /tmp/os-release.copy
    nfs-cat '$url/os-release$args'
  mount with the kernel client (as root):
    mount -t nfs -o vers=3,proto=tcp,port=$nfs_port,mountport=$mount_port,mountproto=tcp,nolock 127.0.0.1:/vol/vol0 /mnt
  administer:
    $build/filerctl --home $home vol status vol0
    $build/filerctl --home $home snap create vol0 demo1   # then: nfs-ls '$url/.snapshot/demo1$args'

Ctrl-C stops filerd (final consistency point); 'make run' again reuses the volume.

EOF
exec "$build/filerd" --home "$home" --foreground
