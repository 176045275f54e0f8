#!/bin/bash
# tests/kernel/guest.sh: the kernel-client cases, run inside the QEMU guest
# (tests/kernel/init chroots into the host's root and runs this from the
# read-write share /run/kt).  The runner (tests/kernel/run) wrote
# /run/kt/env (server address, cases to run) and /run/kt/data/ (files
# whose host copies the guest's reads are compared with).
#
# Output: one "PASS NAME (T s)" or "FAIL NAME (T s): why" line per case on
# stdout and in /run/kt/results; a case's full log is /run/kt/cases/NAME.log.
# "PLAN a b c" first lists the cases the runner must see an answer for.
#
# The guest asks the host to act (restart filerd, add an export, take a
# snapshot) with `host VERB ARGS`: a request file in /run/kt/req, answered
# by the runner with a file in /run/kt/ack (exit status, then output).
set -u
KT=/run/kt
. $KT/env
MNT=/mnt/a
MNT2=/mnt/b
BASE=vers=3,proto=tcp,port=2049,mountport=20048,mountproto=tcp,nolock
# Kernel messages (NFS "server not responding"/"OK") go to the console.
mkdir -p $KT/req $KT/ack $KT/cases

log() { echo "[$(cut -d' ' -f1 /proc/uptime)] $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
die() { echo "FAILED: $*"; exit 1; }

# host VERB ARGS...: ask the runner; prints its output, returns its status.
reqn=0
host() {
	reqn=$((reqn + 1))
	local id="$BASHPID.$reqn" i rc
	echo "$*" > "$KT/req/$id.tmp"
	mv "$KT/req/$id.tmp" "$KT/req/$id.req"
	for ((i = 0; i < 1800; i++)); do
		[ -e "$KT/ack/$id.ack" ] && break
		sleep 0.1
	done
	[ -e "$KT/ack/$id.ack" ] || { echo "host $*: no answer in 180 s"; return 1; }
	rc=$(head -n 1 "$KT/ack/$id.ack")
	tail -n +2 "$KT/ack/$id.ack"
	rm -f "$KT/ack/$id.ack"
	return "$rc"
}

# nfs_mount DIR [EXTRA_OPTS [PATH]]
nfs_mount() {
	local dir=$1 extra=${2:-} path=${3:-$EXPORT}
	mkdir -p "$dir"
	mount -t nfs -o "$BASE${extra:+,$extra}" "$SRV:$path" "$dir" ||
	    die "mount $SRV:$path on $dir (-o $BASE${extra:+,$extra}) failed"
}
# Unmount and mount again: the next reads come from the server.
remount() {
	local dir=${1:-$MNT} opts
	opts=$(awk -v d="$dir" '$2 == d { print $4 }' /proc/mounts)
	local src
	src=$(awk -v d="$dir" '$2 == d { print $1 }' /proc/mounts)
	[ -n "$src" ] || die "$dir is not mounted"
	umount "$dir" || die "umount $dir"
	echo 3 > /proc/sys/vm/drop_caches
	mount -t nfs -o "$opts" "$src" "$dir" || die "remount of $dir"
}
# Per-operation counts and times of the client (ops, RTT, execute).
opstats() {
	awk -v d="$1" '$1 == "device" { on = ($5 == d) }
	    on && $1 == "xprt:" { print "  " $0 }
	    on && $1 ~ /^[A-Z]+:$/ && $2 > 0 {
		printf "  %-12s %7d ops %7d sent  rtt %6.2f ms  exec %6.2f ms\n",
		    $1, $2, $3, $8 / $2, $9 / $2 }' \
	    /proc/self/mountstats
}
same_file() { cmp "$1" "$2" || die "$2 differs from $1"; }
size_of() { stat -c %s "$1"; }

# ------------------------------------------------------------------ cases

case_mount() {
	nfs_mount $MNT
	local line
	line=$(awk -v d=$MNT '$2 == d' /proc/mounts)
	log "$line"
	echo "$line" | grep -q 'rsize=1048576' || die "rsize is not 1 MiB: $line"
	echo "$line" | grep -q 'wsize=1048576' || die "wsize is not 1 MiB: $line"
	echo "$line" | grep -q 'vers=3' || die "not NFSv3: $line"
	# df: FSSTAT's figures against the volume's size as filerctl reports it.
	local size bs blocks bfree bavail files ffree
	read -r bs blocks bfree bavail files ffree < <(stat -f -c '%S %b %f %a %c %d' $MNT)
	log "statfs: bsize $bs blocks $blocks free $bfree avail $bavail files $files ffree $ffree"
	df -B1 $MNT
	size=$(host ctl --json vol status vol0 | sed -n 's/.*"size_bytes": \([0-9]*\).*/\1/p' | head -n 1)
	[ -n "$size" ] || die "no size_bytes from filerctl vol status"
	local total=$((bs * blocks))
	log "filerctl size_bytes $size, df total $total"
	[ "$total" -le "$size" ] || die "df total $total > volume size $size"
	[ "$total" -ge $((size * 8 / 10)) ] || die "df total $total < 80% of volume size $size"
	[ "$bfree" -le "$blocks" ] && [ "$bavail" -le "$bfree" ] || die "free > total"
	local dfline
	dfline=$(df -B1 --output=size,avail $MNT | tail -n 1)
	[ "$(echo $dfline)" = "$total $((bs * bavail))" ] || die "df says '$dfline', statfs $total $((bs * bavail))"
	# Used space follows writes: 32 MiB in, df's used grows by about that
	# (once the server's consistency point has run: 30 s bound).
	local used0 used1 i
	used0=$(( (blocks - bfree) * bs ))
	head -c $((32 << 20)) $KT/data/f200M > $MNT/df-probe || die "write"
	sync $MNT/df-probe || die "fsync"
	for ((i = 0; i < 60; i++)); do
		read -r bs blocks bfree < <(stat -f -c '%S %b %f' $MNT)
		used1=$(( (blocks - bfree) * bs ))
		[ $((used1 - used0)) -ge $((30 << 20)) ] && break
		sleep 0.5
	done
	log "used before $used0, after 32 MiB $used1"
	[ $((used1 - used0)) -ge $((30 << 20)) ] || die "df used grew by $((used1 - used0)) only after writing 32 MiB"
	rm -f $MNT/df-probe
	# stat of the root: a directory owned by root, the export's root.
	local st
	st=$(stat -c '%F %u %g %a %h' $MNT)
	log "root: $st"
	[ "$(stat -c %F $MNT)" = directory ] || die "root is not a directory: $st"
	[ "$(stat -c %u $MNT)" = 0 ] || die "root not owned by uid 0: $st"
	[ "$(stat -c %h $MNT)" -ge 2 ] || die "root link count < 2: $st"
	# fsid differs from every other file system here
	[ "$(stat -c %d $MNT)" != "$(stat -c %d /)" ] || die "same st_dev as /"
	ls -la $MNT
}


case_data_sizes() {
	local d=$MNT/sizes f
	mkdir -p $d || die "mkdir"
	for f in $DATA_FILES; do
		cp $KT/data/$f $d/cp-$f || die "cp $f"
		dd if=$KT/data/$f of=$d/dd-$f bs=4096 status=none || die "dd $f"
	done
	dd if=$KT/data/f1048577 of=$d/dds-f1048577 bs=1M oflag=sync status=none || die "dd oflag=sync"
	# Appends and overwrites inside a page.
	printf 'abc' > $d/small
	printf 'X' | dd of=$d/small bs=1 seek=1 conv=notrunc status=none
	printf 'def' >> $d/small
	remount
	(cd $KT/data && stat -c '%n %s' $DATA_FILES) > /tmp/want.size
	(cd $KT/data && md5sum $DATA_FILES) > /tmp/want.sum
	for p in cp dd; do
		(cd $d && stat -c '%n %s' $(printf "$p-%s " $DATA_FILES)) | sed "s/^$p-//" > /tmp/got.size
		diff /tmp/want.size /tmp/got.size || die "$p: sizes differ"
		(cd $d && md5sum $(printf "$p-%s " $DATA_FILES)) | sed "s/  $p-/  /" > /tmp/got.sum
		diff /tmp/want.sum /tmp/got.sum || die "$p: contents differ"
	done
	same_file $KT/data/f1048577 $d/dds-f1048577
	[ "$(cat $d/small)" = "aXcdef" ] || die "small: '$(cat $d/small)'"
	rm -rf $d /tmp/want.* /tmp/got.*
}

case_data_200m() {
	local t0 t1
	t0=$(now)
	cp $KT/data/f200M $MNT/big || die "cp 200 MiB"
	sync $MNT/big || die "fsync"
	log "200 MiB written in $(since $t0) s"
	remount
	t1=$(now)
	[ "$(size_of $MNT/big)" = $((200 << 20)) ] || die "size $(size_of $MNT/big)"
	same_file $KT/data/f200M $MNT/big
	log "read back in $(since $t1) s"
	rm -f $MNT/big
}

case_sparse() {
	local f=$MNT/sparse ref=/tmp/sparse-ref off
	rm -f $ref
	for off in 0 8192 16384; do	# 4 KiB blocks: 0, 32 MiB, 64 MiB
		dd if=$KT/data/f4096 of=$f bs=4096 seek=$off conv=notrunc status=none || die "dd"
		dd if=$KT/data/f4096 of=$ref bs=4096 seek=$off conv=notrunc status=none
	done
	truncate -s 100M $f $ref || die "truncate"
	# cp --sparse=always keeps the holes too.
	cp --sparse=always $ref $MNT/sparse2 || die "cp"
	# A range cut off by truncating down and up again reads as zeros.
	head -c 8192 $KT/data/f1M > $MNT/sparse3
	truncate -s 4096 $MNT/sparse3 && truncate -s 8192 $MNT/sparse3 || die "truncate"
	remount
	[ "$(size_of $f)" = $((100 << 20)) ] || die "size $(size_of $f)"
	local used
	used=$(du -k $f $MNT/sparse2 | cut -f1 | sort -n | tail -n 1)
	log "sparse: size 100 MiB, du ${used} KiB"
	[ "$used" -lt 4096 ] || die "a sparse file uses $used KiB (holes filled?)"
	same_file $ref $f
	same_file $ref $MNT/sparse2
	{ head -c 4096 $KT/data/f1M; head -c 4096 /dev/zero; } | cmp - $MNT/sparse3 ||
	    die "truncated range does not read as zeros"
	rm -f $f $MNT/sparse2 $MNT/sparse3 $ref
}

case_odirect() {
	local f=$MNT/direct
	dd if=$KT/data/f1M of=$f bs=1M oflag=direct status=none || die "dd oflag=direct 1M"
	dd if=$KT/data/f200M of=$f bs=64k count=160 seek=16 oflag=direct conv=notrunc status=none ||
	    die "dd oflag=direct 64k"
	# Read back with O_DIRECT (no page cache involved) and buffered.
	dd if=$f of=/tmp/direct-read bs=1M iflag=direct status=none || die "dd iflag=direct"
	head -c $((1 << 20)) $KT/data/f1M > /tmp/direct-want
	head -c $((160 * 65536)) $KT/data/f200M >> /tmp/direct-want
	same_file /tmp/direct-want /tmp/direct-read
	# Unaligned-size direct write of the tail (4 KiB blocks).
	dd if=$KT/data/f4096 of=$f bs=4096 seek=1 oflag=direct conv=notrunc status=none || die "dd 4k"
	dd if=$KT/data/f4096 of=/tmp/direct-want bs=4096 seek=1 conv=notrunc status=none
	dd if=$f of=/tmp/direct-read bs=4096 iflag=direct status=none || die "dd iflag=direct 4k"
	same_file /tmp/direct-want /tmp/direct-read
	rm -f $f /tmp/direct-*
}

case_close_to_open() {
	nfs_mount $MNT2 nosharecache
	local i v
	for i in $(seq 1 20); do
		# Same size every time: only mtime/ctime (change) tell the reader.
		v=$(printf 'version %04d' $i)
		echo "$v" > $MNT/cto || die "write"
		[ "$(cat $MNT2/cto)" = "$v" ] || die "iteration $i: other mount read '$(cat $MNT2/cto)', want '$v'"
		echo "$v" > $MNT2/cto2 || die "write 2"
		[ "$(cat $MNT/cto2)" = "$v" ] || die "iteration $i: first mount read '$(cat $MNT/cto2)'"
	done
	# fsync'ed data is visible to the other mount while the writer still
	# holds the file open.
	exec 7> $MNT/cto3
	echo "written before fsync" >&7
	sync $MNT/cto3 || die "fsync"		# coreutils sync FILE: fsync(2)
	[ "$(cat $MNT2/cto3)" = "written before fsync" ] || die "after fsync the other mount reads '$(cat $MNT2/cto3)'"
	exec 7>&-
	# Append from both sides in turn.
	: > $MNT/cto4
	for i in $(seq 1 10); do
		echo "a$i" >> $MNT/cto4
		echo "b$i" >> $MNT2/cto4
	done
	[ "$(wc -l < $MNT/cto4)" = 20 ] || die "interleaved appends: $(wc -l < $MNT/cto4) lines"
	[ "$(sed -n 20p $MNT/cto4)" = b10 ] || die "last line '$(sed -n 20p $MNT/cto4)'"
	# Removed on one side: gone on the other.
	rm $MNT/cto
	[ ! -e $MNT2/cto ] || die "removed file still visible through the other mount"
	umount $MNT2
	rm -f $MNT/cto*
}

# A real tree: $TREE_DIRS under $TREE_TOP (and its top-level symlinks).
case_tree() {
	local d=$MNT/tree t0 list
	list="$TREE_DIRS $(cd $TREE_TOP && find . -maxdepth 1 -type l -printf '%f ')"
	t0=$(now)
	mkdir -p $d
	tar -C $TREE_TOP --format=posix -cf - $list | tar -C $d -xpf - || die "tar"
	log "tar of $TREE_TOP/{$list} in $(since $t0) s"
	opstats $MNT
	remount
	t0=$(now)
	local x
	for x in $TREE_DIRS; do
		diff -r --no-dereference $TREE_TOP/$x $d/$x > /tmp/tree.diff ||
		    { head -20 /tmp/tree.diff; die "diff -r $x found differences"; }
	done
	# Modes, sizes, mtimes (to the nanosecond), owners, symlink targets.
	(cd $TREE_TOP && find $list -printf '%p %y %m %U %G %s %T@ %l\n' | sort) > /tmp/tree.src
	(cd $d && find $list -printf '%p %y %m %U %G %s %T@ %l\n' | sort) > /tmp/tree.nfs
	# A directory's size is the server's business.
	sed -i -E 's/^(\S+ d \S+ \S+ \S+) [0-9]+/\1 -/' /tmp/tree.src /tmp/tree.nfs
	diff /tmp/tree.src /tmp/tree.nfs > /tmp/tree.meta ||
	    { head -20 /tmp/tree.meta; die "metadata differs ($(grep -c '^<' /tmp/tree.meta) entries)"; }
	log "$(wc -l < /tmp/tree.src) entries equal ($(grep -c ' l ' /tmp/tree.src) symlinks), compared in $(since $t0) s"
}

case_bigdir() {
	local d=$MNT/bigdir n=10000 t0
	mkdir -p $d
	t0=$(now)
	# One process creates them all (open O_CREAT: a LOOKUP and a CREATE
	# each; creates in one directory are serialized by the client anyway).
	(cd $d && perl -e 'for (1 .. $ARGV[0]) { open(my $f, ">", sprintf("entry-%05d", $_)) or die "$_: $!" }' $n) ||
	    die "create"
	log "$n creates in $(since $t0) s"
	opstats $MNT
	remount
	t0=$(now)
	ls -l $d > /tmp/bigdir.ls || die "ls -l"
	log "ls -l of $n entries in $(since $t0) s"
	[ "$(grep -c ' entry-' /tmp/bigdir.ls)" = $n ] || die "ls -l lists $(grep -c ' entry-' /tmp/bigdir.ls) entries"
	[ "$(ls $d | sort -u | wc -l)" = $n ] || die "ls lists $(ls $d | sort -u | wc -l) distinct names"
	seq -f 'entry-%05g' 1 $n | diff - <(ls $d | sort) > /dev/null || die "names differ"
	[ "$(find $d -mindepth 1 | wc -l)" = $n ] || die "find"
	# Remove every tenth entry, rename another tenth, list again.
	(cd $d && perl -e 'for (my $i = 1; $i <= $ARGV[0]; $i += 10) {
		unlink(sprintf("entry-%05d", $i)) or die "$i: $!";
		rename(sprintf("entry-%05d", $i + 1), sprintf("renamed-%05d", $i + 1)) or die "$i: $!" }' $n) ||
	    die "unlink/rename"
	echo 3 > /proc/sys/vm/drop_caches
	[ "$(ls $d | grep -c '^entry-')" = $((n * 8 / 10)) ] || die "after the removals: $(ls $d | grep -c '^entry-') entries"
	[ "$(ls $d | grep -c '^renamed-')" = $((n / 10)) ] || die "after the renames: $(ls $d | grep -c '^renamed-') renamed"
	# (The directory stays: removing 10k entries costs a minute here.)
}

case_namespace_ops() {
	local d=$MNT/ops
	rm -rf $d; mkdir -p $d/sub/deeper || die "mkdir"
	cd $d || die "cd"
	# rename over an existing file
	echo old > a; echo new > b
	local ino_b
	ino_b=$(stat -c %i b)
	mv b a || die "rename over"
	[ "$(cat a)" = new ] && [ ! -e b ] && [ "$(stat -c %i a)" = "$ino_b" ] || die "rename over an existing file"
	# rename of a directory (with contents), then into another directory
	echo x > sub/deeper/f
	mv sub sub2 || die "rename dir"
	mkdir other
	mv sub2 other/ || die "move dir"
	[ "$(cat other/sub2/deeper/f)" = x ] || die "moved tree"
	[ "$(stat -c %h other)" = 3 ] || die "link count of other: $(stat -c %h other)"
	[ "$(cd other/sub2/deeper/../.. && pwd)" = "$d/other" ] || die ".. after move"
	# rename onto an empty directory replaces it; onto a non-empty one fails
	mkdir e1 e2; mv -T e1 e2 || die "rename onto an empty directory"
	[ ! -e e1 ] && [ -d e2 ] || die "e1/e2"
	mkdir -p n1 n2/x
	mv -T n1 n2 2>/dev/null && die "rename onto a non-empty directory succeeded"
	# hard links
	echo data > h1
	ln h1 h2 && ln h1 other/h3 || die "link"
	[ "$(stat -c %h h1)" = 3 ] || die "link count $(stat -c %h h1)"
	rm h2
	[ "$(stat -c %h h1)" = 2 ] || die "link count after unlink $(stat -c %h h1)"
	ln h1 h1 2>/dev/null && die "link onto an existing name succeeded"
	# symlinks
	ln -s ../a/target sym || die "symlink"
	[ "$(readlink sym)" = ../a/target ] || die "readlink"
	# mkfifo / mknod
	mkfifo fifo || die "mkfifo"
	mknod cdev c 1 3 || die "mknod c"
	mknod bdev b 7 0 || die "mknod b"
	perl -MSocket -e 'socket(S, PF_UNIX, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_un("sockf")) or die "$!"' ||
	    die "bind of a socket file"
	# chmod / chown / touch -d
	echo m > m
	chown 1234:5678 m && chmod 4751 m || die "chown/chmod"	# (chown clears setuid)
	touch -m -d '2001-02-03 04:05:06.123456789 UTC' m || die "touch -d"
	touch -a -d '1999-12-31 23:59:59.5 UTC' m || die "touch -a -d"
	touch -h -d '2010-01-01 00:00:00 UTC' sym || die "touch -h"
	# truncate up and down
	head -c 10000 $KT/data/f1M > t
	truncate -s 20000 t && truncate -s 5000 t && truncate -s 6000 t || die "truncate"
	{ head -c 5000 $KT/data/f1M; head -c 1000 /dev/zero; } > /tmp/t-want
	truncate -s 0 h1 || die "truncate to 0"
	cd /
	remount
	cd $d || die "cd"
	[ "$(stat -c '%F' fifo)" = fifo ] || die "fifo type: $(stat -c %F fifo)"
	[ "$(stat -c '%F %t %T' cdev)" = "character special file 1 3" ] || die "cdev: $(stat -c '%F %t %T' cdev)"
	[ "$(stat -c '%F %t %T' bdev)" = "block special file 7 0" ] || die "bdev: $(stat -c '%F %t %T' bdev)"
	[ "$(stat -c '%F' sockf)" = socket ] || die "socket: $(stat -c %F sockf)"
	[ "$(stat -c '%a %u %g' m)" = "4751 1234 5678" ] || die "m: $(stat -c '%a %u %g' m)"
	[ "$(stat -c '%y' m)" = "2001-02-03 04:05:06.123456789 +0000" ] || die "mtime $(stat -c %y m)"
	[ "$(stat -c '%x' m)" = "1999-12-31 23:59:59.500000000 +0000" ] || die "atime $(stat -c %x m)"
	[ "$(stat -c '%y' sym)" = "2010-01-01 00:00:00.000000000 +0000" ] || die "symlink mtime $(stat -c %y sym)"
	[ "$(readlink sym)" = ../a/target ] || die "readlink after remount"
	[ "$(size_of t)" = 6000 ] || die "t size $(size_of t)"
	same_file /tmp/t-want t
	[ "$(size_of h1)" = 0 ] && [ "$(stat -c %h h1)" = 2 ] && [ "$(size_of other/h3)" = 0 ] ||
	    die "h1 after truncate: $(stat -c '%s %h' h1)"
	[ "$(cat a)" = new ] || die "a"
	[ "$(ls | sort | tr '\n' ' ')" = "a bdev cdev e2 fifo h1 m n1 n2 other sockf sym t " ] ||
	    die "listing: $(ls | sort | tr '\n' ' ')"
	# A file removed while open stays readable through the open descriptor
	# (the client renames it to .nfsXXXX: silly rename).
	echo "still here" > open-unlinked
	exec 8< open-unlinked
	rm open-unlinked
	[ "$(cat <&8)" = "still here" ] || die "open unlinked file"
	exec 8<&-
	cd /
	rm -rf $d || die "rm -rf"
	[ ! -e $d ] || die "rm -rf left $d"
	rm -f /tmp/t-want
}

# users_perl PHASE DIR: one perl process switches between the users
# (effective uid, gid and supplementary groups, which the kernel client
# sends in AUTH_SYS) and makes the calls, since every exec under TCG
# costs a good fraction of a second.  alice 2001 (groups 2001, 3000), bob
# 2002 (2002), carol 2003 (2003, 3000); the guest's /etc is the host's,
# read-only, so they exist only as numbers.  Prints "FAILED: why" and
# exits 1 at the first check that fails.
users_perl() {
	perl -w - "$@" <<'PERL'
use strict;
use Errno qw(EACCES EPERM);
my ($phase, $d) = @ARGV;
chdir $d or die "chdir $d: $!";
umask 022;
my %ids = (root => [0, 0], alice => [2001, 2001, 3000], bob => [2002, 2002],
    carol => [2003, 2003, 3000]);
sub as {
	my ($uid, $gid, @groups) = @{$ids{$_[0]}};
	$> = 0;
	$) = join(" ", $gid, $gid, @groups);
	$> = $uid;
	$> == $uid or die "seteuid $uid: $!";
}
sub fail { print "FAILED: @_\n"; exit 1; }
sub put { my ($f, $data, $mode) = @_; open(my $h, ">", $f) or return 0;
	print $h $data; close($h) or return 0; chmod($mode, $f) or return 0; 1; }
sub slurp { my $f = shift; open(my $h, "<", $f) or return undef;
	local $/; my $s = <$h>; close($h); defined $s ? $s : ""; }
sub mode { my @st = stat($_[0]) or fail "stat $_[0]: $!"; $st[2] & 07777; }
sub owner { my @st = stat($_[0]) or fail "stat $_[0]: $!"; "$st[4] $st[5]"; }
# denied(what, sub): the call must fail with EACCES or EPERM.
sub denied { my ($what, $ok) = @_; fail "$what was allowed" if $ok;
	fail "$what: $! (want EACCES or EPERM)" unless $!{EACCES} || $!{EPERM}; }

if ($phase eq "1") {
	# Owner-only file: others can neither read it nor, in a sticky
	# directory, remove or rename it; root can.
	as("alice"); put("priv", "a-secret\n", 0600) or fail "alice creates priv: $!";
	owner("priv") eq "2001 2001" && mode("priv") == 0600 or fail "priv: " . owner("priv");
	as("bob");
	denied("bob reading alice's 0600 file", defined slurp("priv"));
	denied("bob removing alice's file from a sticky directory", unlink("priv"));
	denied("bob renaming alice's file in a sticky directory", rename("priv", "bobs"));
	put("bobs", "x", 0644) && unlink("bobs") or fail "bob's own file: $!";
	as("root"); (slurp("priv") // "") eq "a-secret\n" or fail "root cannot read priv";
	# Supplementary groups: 0640 group 3000 is readable by carol (a
	# member), not by bob, and not writable by carol.
	as("alice"); put("grp", "shared\n", 0640) or fail "grp: $!";
	chown(-1, 3000, "grp") or fail "alice: chgrp to her supplementary group: $!";
	owner("grp") eq "2001 3000" or fail "grp owner " . owner("grp");
	denied("alice giving her file to a group she is not in", chown(-1, 2002, "grp"));
	as("carol"); (slurp("grp") // "") eq "shared\n" or fail "carol (group 3000) cannot read grp: $!";
	denied("carol writing a 0640 file", open(my $h, ">>", "grp"));
	as("bob"); denied("bob (not in 3000) reading grp", defined slurp("grp"));
	# Only the owner changes the mode; nobody but root gives a file away.
	denied("bob changing the mode of alice's file", chmod(0666, "grp"));
	as("alice"); denied("alice giving her file to bob", chown(2002, -1, "grp"));
	mode("grp") == 0640 or fail sprintf("grp mode %o", mode("grp"));
	# The client's access cache follows a mode change.
	put("acc", "open\n", 0644) or fail "acc: $!";
	as("bob"); (slurp("acc") // "") eq "open\n" or fail "bob cannot read a 0644 file: $!";
	as("alice"); chmod(0600, "acc") or fail "chmod acc: $!";
	as("bob"); denied("bob reading acc after chmod 600", defined slurp("acc"));
	# Setgid directory: new entries take its group, subdirectories its
	# setgid bit; a non-member cannot create in its 0775.
	as("root"); mkdir("sg") && chown(0, 3000, "sg") && chmod(02775, "sg") or fail "sg: $!";
	as("alice"); put("sg/f", "f", 0644) && mkdir("sg/sub") or fail "alice creates in sg: $!";
	owner("sg/f") eq "2001 3000" or fail "file in a setgid directory: " . owner("sg/f");
	owner("sg/sub") eq "2001 3000" && mode("sg/sub") == 02755 or
	    fail sprintf("subdirectory: %s %o", owner("sg/sub"), mode("sg/sub"));
	as("bob"); denied("bob creating in a 2775 directory of another group", put("sg/bob", "x", 0644));
	# A write by someone other than the owner clears set-user-ID (checked
	# after a remount, phase 2).
	as("alice"); put("suid", "s\n", 04777) or fail "suid: $!";
	mode("suid") == 04777 or fail sprintf("suid mode %o", mode("suid"));
	my $w;
	as("bob"); open($w, ">>", "suid") && print($w "appended\n") && close($w) or
	    fail "bob writes a 4777 file: $!";
	# Times: a user who may write sets them to now, only the owner to any
	# other value (checked after the remount).
	as("alice"); put("times", "t\n", 0666) or fail "times: $!";
	as("bob"); utime(undef, undef, "times") or fail "bob (write permission) sets times to now: $!";
	denied("bob setting alice's mtime to a given time", utime(978307200, 978307200, "times"));
	as("alice"); utime(978307200, 978307200, "times") or fail "the owner sets a given time: $!";
	# Execute-only program (copied in by root before): not readable.
	as("bob"); denied("bob reading a 0711 file", defined slurp("busybox"));
} else {
	my @st = stat("suid") or fail "stat suid: $!";
	($st[2] & 07777) == 0777 or fail sprintf("set-user-ID kept after another user's write: %o", $st[2] & 07777);
	(stat("times"))[9] == 978307200 or fail "times mtime " . (stat("times"))[9];
	# A user with write permission truncates; one without cannot.
	as("bob"); truncate("times", 0) or fail "bob truncates a 0666 file: $!";
	-s "times" and fail "times size " . (-s "times");
	denied("bob truncating alice's 0600 file", truncate("priv", 0));
	as("root"); (slurp("priv") // "") eq "a-secret\n" or fail "priv changed";
}
PERL
}

# Ordinary users through the kernel client: the permission checks a
# multi-user client relies on, with the client's own access cache between
# them and the server.
case_users() {
	local d=$MNT/kt-users
	rm -rf $d
	mkdir $d && chmod 1777 $d || die "setup"
	cp /bin/busybox $d/busybox && chmod 711 $d/busybox || die "busybox"
	users_perl 1 $d || die "phase 1"
	# An execute-only program runs (the client reads it with the
	# caller's credentials).
	[ "$(setpriv --reuid=2002 --regid=2002 --clear-groups -- $d/busybox echo ran)" = ran ] ||
	    die "bob cannot run a 0711 program"
	remount
	users_perl 2 $d || die "phase 2"
	rm -rf $d || die "rm -rf"
}

# restart_under_load SIGNAL: two writers on the hard mount, a dd with
# conv=fsync and a buffered dd followed by sync, both in the middle of their
# work when filerd is stopped with SIGNAL and started again 2 s later.  Both
# must finish by themselves with status 0, and the files must hold what was
# written: read by libnfs on the host (the server's copy, no client cache)
# and by the guest after umount + mount.
restart_under_load() {
	local sig=$1 src=/tmp/restart-src a=$MNT/restart-fsync b=$MNT/restart-buffered
	local n=160 pa pb ra rb want got	# MiB: enough that both are still writing 1 s in
	head -c $((n << 20)) $KT/data/f200M > $src
	rm -f $a $b
	dd if=$src of=$a bs=1M conv=fsync status=none &
	pa=$!
	( dd if=$src of=$b bs=1M status=none && sync $b ) &
	pb=$!
	sleep 1
	kill -0 $pa 2>/dev/null || die "dd conv=fsync finished before the restart (too fast to test)"
	kill -0 $pb 2>/dev/null || die "buffered dd + sync finished before the restart (too fast to test)"
	# (No stat of the files here: a GETATTR of a file with dirty pages
	# makes the client write them all first.)
	log "both writers running; asking for a $sig restart"
	host restart $sig || die "host restart $sig failed"
	log "filerd restarted; writers still running: $(kill -0 $pa 2>/dev/null && echo yes || echo no)" \
	    "$(kill -0 $pb 2>/dev/null && echo yes || echo no)"
	wait $pa; ra=$?
	wait $pb; rb=$?
	log "dd conv=fsync exit $ra, buffered dd + sync exit $rb"
	[ $ra = 0 ] || die "dd conv=fsync exit $ra across the restart"
	[ $rb = 0 ] || die "buffered dd + sync exit $rb across the restart"
	want=$(md5sum < $src | cut -d' ' -f1)
	got=$(host md5 restart-fsync) || die "host md5: $got"
	[ "$want" = "$got" ] || die "server's copy of the fsync'ed file: md5 $got, want $want"
	got=$(host md5 restart-buffered) || die "host md5: $got"
	[ "$want" = "$got" ] || die "server's copy of the buffered file: md5 $got, want $want"
	remount
	same_file $src $a
	same_file $src $b
	rm -f $a $b $src
}
case_restart_kill9() { restart_under_load KILL; }
case_restart_sigterm() { restart_under_load TERM; }

# Non-idempotent calls across connection resets: the host aborts the
# server's end of the TCP connection 20 times while one process runs
# mkdir/rename/rmdir/exclusive create/link/unlink in a loop.  The client
# reconnects from the same port and sends again each call whose reply was
# lost; the server must answer those from its duplicate request cache (a
# call executed twice shows up as EEXIST or ENOENT here).
case_drc_reconnect() {
	local d=$MNT/drc pid rc
	rm -rf $d; mkdir -p $d || die "mkdir"
	rm -f /tmp/drc-stop /tmp/drc-count
	(cd $d && perl -e '
		use Fcntl;
		my $i = 0;
		sub chk { my ($ok, $what) = @_; $ok or die "iteration $i: $what: $!\n" }
		until (-e "/tmp/drc-stop") {
			chk(mkdir("d$i"), "mkdir d$i");
			chk(rename("d$i", "e$i"), "rename d$i e$i");
			chk(rmdir("e$i"), "rmdir e$i");
			chk(sysopen(my $f, "f$i", O_CREAT | O_EXCL | O_WRONLY), "create f$i");
			close($f);
			chk(link("f$i", "g$i"), "link f$i g$i");
			chk(unlink("f$i"), "unlink f$i");
			chk(rename("g$i", "h$i"), "rename g$i h$i");
			chk(symlink("h$i", "s$i"), "symlink s$i");
			chk(unlink("s$i"), "unlink s$i");
			$i++;
		}
		open(my $c, ">", "/tmp/drc-count"); print $c "$i\n";
	') &
	pid=$!
	sleep 1
	kill -0 $pid 2>/dev/null || { wait $pid; die "the loop stopped before the resets"; }
	host reset 20 || die "host reset"
	touch /tmp/drc-stop
	wait $pid; rc=$?
	local n
	n=$(cat /tmp/drc-count 2>/dev/null)
	log "loop exit $rc after ${n:-?} iterations"
	opstats $MNT
	[ $rc = 0 ] || die "the loop failed across the connection resets (exit $rc)"
	[ "${n:-0}" -gt 0 ] || die "no iteration"
	# What is left: h0 .. h(n-1), nothing else.
	[ "$(ls $d | wc -l)" = "$n" ] || die "$(ls $d | wc -l) entries left, want $n"
	[ "$(ls $d | grep -vc '^h[0-9]*$')" = 0 ] || die "unexpected entries: $(ls $d | grep -v '^h[0-9]*$' | head)"
	rm -rf $d
}

case_export_ro() {
	mkdir -p $MNT/kt-ro && echo "read me" > $MNT/kt-ro/file || die "setup"
	host ctl export add $EXPORT/kt-ro --client $GUEST_IP --ro --squash none || die "export add"
	nfs_mount $MNT2 "" $EXPORT/kt-ro
	[ "$(cat $MNT2/file)" = "read me" ] || die "read on the ro export"
	local e
	e=$(touch $MNT2/new 2>&1) && die "create on a ro export succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "create: '$e', want EROFS"
	# Opening an existing file for writing: the client asks ACCESS first,
	# which never grants MODIFY on a ro export, so the open fails with
	# EACCES before any write reaches the server (as with knfsd).
	e=$(sh -c "echo x >> $MNT2/file" 2>&1) && die "append on a ro export succeeded"
	echo "$e" | grep -Eq 'Read-only file system|Permission denied' || die "write: '$e', want EROFS or EACCES"
	e=$(rm $MNT2/file 2>&1) && die "remove on a ro export succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "remove: '$e', want EROFS"
	e=$(chmod 600 $MNT2/file 2>&1) && die "chmod on a ro export succeeded"
	e=$(mkdir $MNT2/dir 2>&1) && die "mkdir on a ro export succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "mkdir: '$e', want EROFS"
	[ "$(cat $MNT2/file)" = "read me" ] || die "file changed"
	umount $MNT2
	host ctl export remove $EXPORT/kt-ro || die "export remove"
	rm -rf $MNT/kt-ro
}

case_export_root_squash() {
	mkdir -p $MNT/kt-sq && chmod 1777 $MNT/kt-sq || die "setup"
	echo secret > $MNT/kt-sq/private && chmod 600 $MNT/kt-sq/private
	host ctl export add $EXPORT/kt-sq --client $GUEST_IP --rw --squash root || die "export add"
	nfs_mount $MNT2 "" $EXPORT/kt-sq
	echo hi > $MNT2/mine || die "create as squashed root"
	[ "$(stat -c '%u %g' $MNT2/mine)" = "65534 65534" ] || die "owner $(stat -c '%u %g' $MNT2/mine), want 65534 65534"
	remount $MNT2
	[ "$(stat -c '%u %g' $MNT2/mine)" = "65534 65534" ] || die "owner after remount $(stat -c '%u %g' $MNT2/mine)"
	cat $MNT2/private > /dev/null 2>&1 && die "squashed root read a 0600 root file"
	chown 0:0 $MNT2/mine 2>/dev/null && die "squashed root could chown to root"
	# The unsquashed mount sees the same owner.
	[ "$(stat -c '%u %g' $MNT/kt-sq/mine)" = "65534 65534" ] || die "owner via the main export"
	umount $MNT2
	host ctl export remove $EXPORT/kt-sq || die "export remove"
	rm -rf $MNT/kt-sq
}

case_export_denied() {
	mkdir -p $MNT/kt-deny || die "setup"
	host ctl export add $EXPORT/kt-deny --client 10.231.0.99 --rw || die "export add"
	mkdir -p $MNT2
	local e
	e=$(timeout 60 mount -t nfs -o "$BASE,retry=0" "$SRV:$EXPORT/kt-deny" $MNT2 2>&1) &&
	    { umount $MNT2; die "a client not in the rules mounted $EXPORT/kt-deny"; }
	log "mount refused: $e"
	echo "$e" | grep -qi 'denied' || die "refusal '$e' does not say access denied"
	host ctl export remove $EXPORT/kt-deny || die "export remove"
	rm -rf $MNT/kt-deny
}

case_snapshot() {
	local d=$MNT/snapdir
	mkdir -p $d && echo before > $d/f && head -c 300000 $KT/data/f1M > $d/g || die "setup"
	sync
	host ctl snap create vol0 kt-s1 || die "snap create"
	echo after > $d/f
	rm $d/g
	ls -la $MNT/.snapshot/ || die "ls .snapshot"
	ls $MNT/.snapshot | grep -qx kt-s1 || die ".snapshot does not list kt-s1"
	[ "$(cat $MNT/.snapshot/kt-s1/snapdir/f)" = before ] || die "snapshot f: '$(cat $MNT/.snapshot/kt-s1/snapdir/f)'"
	head -c 300000 $KT/data/f1M | cmp - $MNT/.snapshot/kt-s1/snapdir/g || die "snapshot g differs"
	[ "$(cat $d/f)" = after ] || die "active f"
	local e
	# (an existing file: ACCESS denies MODIFY, so EACCES at open; see export_ro)
	e=$(sh -c "echo x > $MNT/.snapshot/kt-s1/snapdir/f" 2>&1) && die "write into a snapshot succeeded"
	echo "$e" | grep -Eq 'Read-only file system|Permission denied' || die "write into a snapshot: '$e', want EROFS or EACCES"
	e=$(touch $MNT/.snapshot/kt-s1/snapdir/new 2>&1) && die "create in a snapshot succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "create in a snapshot: '$e', want EROFS"
	e=$(rm $MNT/.snapshot/kt-s1/snapdir/f 2>&1) && die "remove in a snapshot succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "remove in a snapshot: '$e', want EROFS"
	e=$(mkdir $MNT/.snapshot/new 2>&1) && die "mkdir in .snapshot succeeded"
	remount
	[ "$(cat $MNT/.snapshot/kt-s1/snapdir/f)" = before ] || die "snapshot after remount"
	diff <(cd $MNT/.snapshot/kt-s1/snapdir && ls) <(printf 'f\ng\n') > /dev/null || die "snapshot listing"
	host ctl snap delete vol0 kt-s1 || die "snap delete"
	rm -rf $d
}

case_mount_udp() {
	nfs_mount $MNT2 "proto=udp,mountproto=udp,nosharecache"
	local line
	line=$(awk -v d=$MNT2 '$2 == d' /proc/mounts)
	log "$line"
	echo "$line" | grep -q 'proto=udp' || die "not over udp: $line"
	dd if=$KT/data/f1M of=$MNT2/udp bs=64k status=none || die "write over udp"
	remount $MNT2
	same_file $KT/data/f1M $MNT2/udp
	ls -la $MNT2 > /dev/null || die "ls"
	rm $MNT2/udp
	umount $MNT2
}

# MOUNT over UDP, NFS over TCP (works with every kernel).
case_mountproto_udp() {
	mkdir -p $MNT2
	mount -t nfs -o "vers=3,proto=tcp,port=2049,mountport=20048,mountproto=udp,nolock,nosharecache" \
	    "$SRV:$EXPORT" $MNT2 || die "mount with mountproto=udp"
	grep " $MNT2 " /proc/mounts | grep -q 'mountproto=udp' || die "mountproto"
	ls $MNT2 > /dev/null || die "ls"
	umount $MNT2
}

# The read-only secondary, mounted by the kernel client while the source
# goes on writing (called by case_mirror_failover, mirror in sync): what
# the source wrote reads back equal; creates, removes, mkdir and writes
# fail with EROFS; a file kept open there, and a directory used as the
# working directory, keep working across the root switches of the CPs
# that follow (no ESTALE), and each reopen sees the newest acknowledged
# contents (the source's attributes change with them, so close-to-open
# revalidation finds the change).
# round_seen S K: the secondary's copy S shows round K everywhere; else
# why (in $why).
round_seen() {
	local s=$1 k=$2 got
	got=$(cat $s/dir/round)
	[ "$got" = "round $k" ] || { why="reopened, round reads '$got'"; return 1; }
	got=$(cat round)
	[ "$got" = "round $k" ] || { why="through the working directory, round reads '$got'"; return 1; }
	ls | grep -qx r$k || { why="r$k not listed ($(ls | tr '\n' ' '))"; return 1; }
	cmp -s -n $((k * 4096)) $KT/data/f1M r$k || { why="r$k differs"; return 1; }
	# The descriptor opened in round 0: its handle still reads.
	got=$(head -n 1 /dev/fd/6)
	[ "$got" = "round $k" ] || { why="the descriptor opened before reads '$got'"; return 1; }
	return 0
}

secondary() {
	local d=$1 s=$MNT2/fo k e i why
	ip route add ${DST_SRV%.*}.0/24 via $SRV 2> /dev/null
	mkdir -p $MNT2
	mount -t nfs -o "$BASE,nosharecache" "$DST_SRV:$EXPORT" $MNT2 ||
	    die "mount of the secondary $DST_SRV:$EXPORT"
	same_file $KT/data/f1048577 $s/a
	same_file $KT/data/f4097 $s/link
	[ "$(cat $s/dir/late)" = "written after the baseline" ] || die "secondary: late"
	e=$(touch $s/new 2>&1) && die "create on the secondary succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "create on the secondary: '$e', want EROFS"
	e=$(rm $s/a 2>&1) && die "remove on the secondary succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "remove on the secondary: '$e', want EROFS"
	e=$(mkdir $s/newdir 2>&1) && die "mkdir on the secondary succeeded"
	echo "$e" | grep -q 'Read-only file system' || die "mkdir on the secondary: '$e', want EROFS"
	e=$(sh -c "echo x >> $s/log" 2>&1) && die "append on the secondary succeeded"
	echo "$e" | grep -Eq 'Read-only file system|Permission denied' || die "append on the secondary: '$e', want EROFS or EACCES"
	printf 'round 0\n' > $d/dir/round || die "round 0"
	sync
	host ctl snap create vol0 kt-sec0 > /dev/null || die "snap create"
	host mirror-wait > /dev/null || die "round 0: not acknowledged"
	exec 6< $s/dir/round || die "open on the secondary"
	pushd $s/dir > /dev/null || die "cd on the secondary"
	for k in 1 2 3 4 5; do
		printf 'round %d\n' $k > $d/dir/round || die "round $k"
		head -c $((k * 4096)) $KT/data/f1M > $d/dir/r$k || die "r$k"
		sync
		host ctl snap create vol0 kt-sec$k > /dev/null || die "snap create"
		host ctl snap delete vol0 kt-sec$((k - 1)) > /dev/null || die "snap delete"
		host mirror-wait > /dev/null || die "round $k: not acknowledged"
		# Acknowledged is durable there; serving it follows at once,
		# so allow a moment.  Each try drops the client's caches:
		# reopens and listings then ask the server.
		for ((i = 0; i < 50; i++)); do
			echo 3 > /proc/sys/vm/drop_caches
			round_seen $s $k && break
			sleep 0.1
		done
		round_seen $s $k || die "secondary, round $k: $why"
	done
	popd > /dev/null
	exec 6<&-
	umount $MNT2 || die "umount of the secondary"
	rm $d/dir/round $d/dir/r[1-5] || die "rm"
	sync
	# (its CP carries the removes to the destination)
	host ctl snap delete vol0 kt-sec5 > /dev/null || die "snap delete"
	host mirror-wait > /dev/null || die "the removes were not acknowledged"
}

# Failover to a mirror, the way an appliance pair is used: a second filerd
# mirrors vol0 (sync mode, another geometry); the guest writes a tree,
# keeps a file open for reading, one for appending and a directory as its
# working directory, takes a snapshot (a CP: data the client wrote with
# FILE_SYNC may sit in the source's NVLOG until one, and a mirror ships
# CPs) and waits for the destination to acknowledge it.  Then
# the source dies, the destination is broken off (writable) and takes
# over the server's address.  The same mount goes on: the open files and
# the working directory use the handles the source gave (the destination
# carries the source's fsid, handle key and inode numbers), what was
# written is all there, and new writes land on the destination.  Last
# case: the guest's server is the destination from here on.
case_mirror_failover() {
	local d=$MNT/fo want got
	rm -rf $d
	mkdir -p $d/dir || die "mkdir"
	cp $KT/data/f1048577 $d/a && cp $KT/data/f4097 $d/dir/b || die "cp"
	ln -s dir/b $d/link && ln $d/a $d/hard || die "ln"
	head -c 3000000 $KT/data/f200M > $d/sparse-src
	dd if=$d/sparse-src of=$d/sparse bs=1M seek=40 conv=notrunc status=none || die "dd"
	echo before > $d/log
	host mirror-setup || die "mirror setup"
	echo "written after the baseline" > $d/dir/late
	exec 7< $d/a
	exec 8>> $d/log
	cd $d/dir || die "cd"
	sync
	host ctl snap create vol0 kt-fo || die "snap create"
	host mirror-wait || die "the destination did not acknowledge"
	secondary $d
	host failover || die "failover"
	echo 3 > /proc/sys/vm/drop_caches
	# The open file, read again from the server through its old handle.
	cmp $KT/data/f1048577 - <&7 || die "open file reads differently after failover"
	exec 7<&-
	# The working directory's handle, and names looked up through it.
	[ "$(ls | tr '\n' ' ')" = "b late " ] || die "cwd listing after failover: '$(ls | tr '\n' ' ')'"
	[ "$(cat late)" = "written after the baseline" ] || die "late: '$(cat late)'"
	same_file $KT/data/f4097 b
	# An append through the descriptor opened on the source.
	echo after >&8 || die "append to the open file after failover"
	exec 8>&-
	cd /
	[ "$(cat $d/log)" = "$(printf 'before\nafter')" ] || die "log: '$(cat $d/log)'"
	[ "$(readlink $d/link)" = dir/b ] || die "symlink"
	same_file $KT/data/f4097 $d/link
	[ "$(stat -c %h $d/a)" = 2 ] || die "link count of a: $(stat -c %h $d/a)"
	[ "$(stat -c %i $d/a)" = "$(stat -c %i $d/hard)" ] || die "hard link"
	[ "$(size_of $d/sparse)" = $((40 * 1048576 + 3000000)) ] || die "sparse size $(size_of $d/sparse)"
	cmp -n $((40 << 20)) /dev/zero $d/sparse || die "sparse hole"
	cmp -i 0:$((40 << 20)) $d/sparse-src $d/sparse || die "sparse data"
	# New data on the destination, read back by libnfs on the host.
	cp $KT/data/f1M $d/new || die "write on the destination"
	sync
	want=$(md5sum < $KT/data/f1M | cut -d' ' -f1)
	got=$(host md5 fo/new) || die "host md5: $got"
	[ "$want" = "$got" ] || die "destination's copy of new: md5 $got, want $want"
	got=$(host md5 fo/log) || die "host md5: $got"
	[ "$got" = "$(md5sum < $d/log | cut -d' ' -f1)" ] || die "destination's copy of log differs"
	host ctl mirror status vol0 | grep -q broken-off || die "the destination's mirror is not broken off"
	[ "$(cat $MNT/.snapshot/kt-fo/fo/dir/late)" = "written after the baseline" ] ||
	    die "the source's snapshot on the destination"
	host ctl check vol0 || die "check of the destination's volume"
	remount
	same_file $KT/data/f1048577 $d/hard
	same_file $KT/data/f1M $d/new
	rm -rf $d || die "rm"
	host ctl snap delete vol0 kt-fo || die "snap delete"
}

# ------------------------------------------------------------------ main

run_case() {
	local name=$1 t0 rc line
	t0=$(now)
	log "=== $name"
	( set -o pipefail; cd /; "case_$name" ) > $KT/cases/$name.log 2>&1 < /dev/null
	rc=$?
	local t
	t=$(printf '%.1f' "$(since $t0)")
	if [ $rc = 0 ]; then
		line="PASS $name ($t s)"
	else
		line="FAIL $name ($t s): $(grep '^FAILED: ' $KT/cases/$name.log | tail -n 1 | cut -c9-)"
		[ "$line" != "${line%: }" ] && line="$line exit $rc"
		sed 's/^/    | /' $KT/cases/$name.log | tail -n 25
	fi
	echo "$line"
	echo "$line" >> $KT/results
}

echo "PLAN $CASES" | tee $KT/results
[ -n "${DATA_FILES:-}" ] || DATA_FILES=$(cd $KT/data && ls | grep -v f200M)
# mount first: the other cases use its mount of the export.
for c in $CASES; do
	if [ "$c" = mount ] || ! grep -qs ' /mnt/a ' /proc/mounts; then
		[ "$c" = mount ] || nfs_mount $MNT
	fi
	run_case "$c"
	# A case that failed in the middle may leave the second mount behind.
	grep -qs " $MNT2 " /proc/mounts && umount -f $MNT2
done
grep -qs " $MNT " /proc/mounts && umount $MNT
echo "DONE"
exit 0
