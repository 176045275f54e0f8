#!/usr/bin/env bash
# admin/demo_mirror.sh BUILD SRC_HOME DST_HOME: what `make demo-mirror` does.
#
# Two appliances on this machine: the `make run` demo (SRC_HOME, var/demo,
# volume vol0, made on first use as `make run` makes it) as the mirror
# source, and a second home (DST_HOME, var/demo-dst) whose vol0 (4 disks,
# single parity: another geometry, the same VBN space) is the destination.
# Both filerds run in the foreground of this script (their logs in
# HOME/filerd.log); the peers (one shared key, SRC_HOME/mirror.key) and the
# relationship are made on first use, and a later run resumes it where it
# stopped.  Once the destination serves the source's generation, the
# script prints the source's nfs:// URL, then the read-only secondary's.
# Ctrl-C stops both filerds cleanly (final consistency point each).
set -eu

build=${1:-build}
src=${2:-var/demo}
dst=${3:-var/demo-dst}
sctl() { "$build/filerctl" --home "$src" "$@"; }
dctl() { "$build/filerctl" --home "$dst" "$@"; }

for h in "$src" "$dst"; do
	mkdir -p "$h"
	if "$build/filerctl" --home "$h" stats >/dev/null 2>&1; then
		echo "make demo-mirror: filerd already runs on $h; stop it" \
		    "first (Ctrl-C in its terminal or kill -TERM PID)" >&2
		exit 1
	fi
done
src=$(cd "$src" && pwd)
dst=$(cd "$dst" && pwd)

# Something listens on 127.0.0.1:$1 (TCP)?
port_taken() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
taken=" "
# A free port from $1 on, not handed out before in this run.
free_from() {
	local p=$1
	while port_taken "$p" || [[ $taken == *" $p "* ]]; do
		p=$((p + 1))
	done
	taken="$taken$p "
	echo "$p"
}
setting() {
	"$build/filerctl" --home "$1" --json config get "$2" |
	    sed -n 's/.*"value": "\([^"]*\)".*/\1/p'
}
# Keep a home's configured port if it is free, else take another.
port_for() {
	local home=$1 key=$2 from=$3 cur
	cur=$(setting "$home" "$key")
	if port_taken "$cur" || [[ $taken == *" $cur "* ]]; then
		cur=$(free_from "$from")
		"$build/filerctl" --home "$home" config set "$key" "$cur" \
		    >/dev/null
		"$build/filerctl" --home "$home" config set nfs_rpcbind false \
		    >/dev/null
	else
		taken="$taken$cur "
	fi
	echo "$cur"
}

if ! sctl vol status vol0 >/dev/null 2>&1; then
	echo "make demo-mirror: creating the demo volume vol0 in $src"
	sctl vol create vol0 --disks 5 --parity 2 --size 256M >/dev/null
fi
if ! sctl --json export list |
    grep -q '"path": "/vol/vol0"[^}]*"client": "127.0.0.1"'; then
	sctl export add /vol/vol0 --client 127.0.0.1 --rw --squash none \
	    --insecure >/dev/null
fi
if ! dctl vol status vol0 >/dev/null 2>&1; then
	echo "make demo-mirror: creating the destination volume vol0 in $dst"
	dctl vol create vol0 --disks 4 --parity 1 --size 256M >/dev/null
	dctl export add /vol/vol0 --client 127.0.0.1 --squash none \
	    --insecure >/dev/null
	# Its ports must differ from the source's defaults.
	dctl config set nfs_port 12301 >/dev/null
	dctl config set mount_port 12302 >/dev/null
	dctl config set mirror_port 12303 >/dev/null
	dctl config set nfs_rpcbind false >/dev/null
fi

s_nfs=$(port_for "$src" nfs_port 12049)
s_mnt=$(port_for "$src" mount_port 12050)
s_mir=$(port_for "$src" mirror_port 10566)
d_nfs=$(port_for "$dst" nfs_port 12301)
d_mnt=$(port_for "$dst" mount_port 12302)
d_mir=$(port_for "$dst" mirror_port 12303)

key=$src/mirror.key
if [ ! -s "$key" ]; then
	(umask 077 && head -c 32 /dev/urandom | base64 > "$key")
fi

spid=
dpid=
stop() {
	trap - INT TERM
	echo
	echo "make demo-mirror: stopping both filerds"
	[ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null || true
	[ -n "$dpid" ] && kill -TERM "$dpid" 2>/dev/null || true
	wait
	exit 0
}
trap stop INT TERM

"$build/filerd" --home "$dst" --foreground >>"$dst/filerd.log" 2>&1 &
dpid=$!
"$build/filerd" --home "$src" --foreground >>"$src/filerd.log" 2>&1 &
spid=$!
for i in $(seq 1 200); do
	if sctl stats >/dev/null 2>&1 && dctl stats >/dev/null 2>&1; then
		break
	fi
	if ! kill -0 "$spid" 2>/dev/null || ! kill -0 "$dpid" 2>/dev/null; then
		echo "make demo-mirror: a filerd did not start; see" \
		    "$src/filerd.log and $dst/filerd.log" >&2
		stop
	fi
	sleep 0.1
done

# The peers point at each other's mirror listener (kept up to date).
for side in s d; do
	if [ $side = s ]; then
		c=sctl; peer=dst; port=$d_mir
	else
		c=dctl; peer=src; port=$s_mir
	fi
	if ! $c --json peer list |
	    grep -q "\"name\": \"$peer\"[^}]*\"port\": $port[,}]"; then
		$c mirror delete vol0 >/dev/null 2>&1 || true
		$c peer remove $peer >/dev/null 2>&1 || true
		$c peer add $peer --address "127.0.0.1:$port" --key-file "$key" \
		    >/dev/null
	fi
done
if ! dctl mirror status vol0 >/dev/null 2>&1; then
	dctl mirror create src:vol0 vol0 --mode sync >/dev/null
fi
if ! sctl mirror status vol0 >/dev/null 2>&1; then
	sctl mirror create vol0 dst:vol0 --mode sync >/dev/null
fi
if sctl --json mirror status vol0 | grep -q '"state": "uninitialized"'; then
	sctl mirror init vol0 >/dev/null
fi

echo "make demo-mirror: waiting for the baseline..."
for i in $(seq 1 600); do
	if dctl --json mirror status vol0 | grep -q '"state": "in-sync"' &&
	    sctl --json mirror status vol0 | grep -q '"state": "in-sync"'; then
		break
	fi
	sleep 0.1
done
sctl mirror status vol0 || true

surl="nfs://127.0.0.1/vol/vol0?nfsport=$s_nfs&mountport=$s_mnt"
durl="nfs://127.0.0.1/vol/vol0?nfsport=$d_nfs&mountport=$d_mnt"
cat <<EOF

filer mirror demo: $src (source) -> $dst (destination), volume vol0, sync
  source (read-write):     $surl
  secondary (read-only):   $durl

  write on the source, then read on the secondary after the next CP
  (a snapshot makes one now):
    nfs-cp /etc/os-release 'nfs://127.0.0.1/vol/vol0/os-release?nfsport=$s_nfs&mountport=$s_mnt'
    $build/filerctl --home $src snap create vol0 demo-\$(date +%s)
    nfs-cat 'nfs://127.0.0.1/vol/vol0/os-release?nfsport=$d_nfs&mountport=$d_mnt'
  follow the relationship:
    $build/filerctl --home $src mirror status
    $build/filerctl --home $dst mirror status
  fail over (the secondary becomes writable; this demo then starts over
  with a new baseline only after 'mirror delete vol0' on both sides):
    $build/filerctl --home $dst mirror break vol0
  logs: $src/filerd.log, $dst/filerd.log

Ctrl-C stops both filerds (final consistency point each).

EOF
wait
