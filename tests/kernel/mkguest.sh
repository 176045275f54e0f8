#!/bin/sh
# tests/kernel/mkguest.sh OUT: build the guest kit for the kernel-client
# tests (docs/testing.md) under OUT (build/guest):
#   OUT/vmlinuz, OUT/config      Debian's kernel (the package linux-image-amd64
#                                depends on), fetched with apt-get download
#                                and unpacked with dpkg-deb -x, never installed
#   OUT/modules/*.ko, OUT/modules/order
#                                the modules for virtio networking, 9p and
#                                the NFSv3 client, in load order (modprobe
#                                --show-depends)
#   OUT/initrd.img               busybox-static + those modules + /init
#                                (tests/kernel/init)
# The kernel and its modules are fetched once (OUT/kernel.version marks
# them); the initramfs is rebuilt whenever this script or init changes.
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mods="virtio_pci virtio_net 9p 9pnet_virtio nfsv3 nfs"

mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ ! -s "$out/kernel.version" ] || [ ! -s "$out/vmlinuz" ] ||
   [ ! -s "$out/modules/order" ]; then
	pkg=$(apt-cache depends linux-image-amd64 |
	    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	if [ -z "$pkg" ]; then
		echo "mkguest: cannot tell which kernel package linux-image-amd64 depends on" >&2
		echo "mkguest: run apt-get update (as root) and retry" >&2
		exit 1
	fi
	ver=${pkg#linux-image-}
	tmp=$(mktemp -d /tmp/filer-guest.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	chmod 755 "$tmp"
	echo "mkguest: fetching $pkg"
	# apt-get download writes into the current directory; as root it
	# works unsandboxed (the notice about user _apt is harmless).
	(cd "$tmp" && apt-get download -q "$pkg" 2>&1 |
	    grep -v 'unsandboxed' || true)
	deb=$(ls "$tmp"/*.deb 2>/dev/null | head -n 1)
	if [ -z "$deb" ]; then
		echo "mkguest: apt-get download $pkg failed" >&2
		exit 1
	fi
	dpkg-deb -x "$deb" "$tmp/root"
	depmod -b "$tmp/root" "$ver"
	rm -rf "$out/modules"
	mkdir -p "$out/modules"
	: > "$out/modules/order.tmp"
	for m in $mods; do
		modprobe -d "$tmp/root" -S "$ver" --show-depends "$m" |
		while read -r kind path _rest; do
			[ "$kind" = insmod ] || continue
			base=$(basename "$path")
			grep -qx "$base" "$out/modules/order.tmp" && continue
			cp "$path" "$out/modules/$base"
			echo "$base" >> "$out/modules/order.tmp"
		done
	done
	mv "$out/modules/order.tmp" "$out/modules/order"
	cp "$tmp/root/boot/vmlinuz-$ver" "$out/vmlinuz"
	cp "$tmp/root/boot/config-$ver" "$out/config"
	echo "$ver" > "$out/kernel.version"
	rm -rf "$tmp"
	trap - EXIT
fi

# The initramfs.
busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' &&
   ! ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
	echo "mkguest: $busybox is not static (install busybox-static)" >&2
	exit 1
fi
ird=$(mktemp -d /tmp/filer-initrd.XXXXXX)
trap 'rm -rf "$ird"' EXIT
mkdir -p "$ird/bin" "$ird/lib/modules" "$ird/proc" "$ird/sys" "$ird/dev" \
    "$ird/newroot" "$ird/tmp"
cp "$busybox" "$ird/bin/busybox"
ln -s busybox "$ird/bin/sh"
cp "$out/modules/"*.ko "$out/modules/order" "$ird/lib/modules/"
cp "$here/init" "$ird/init"
chmod 755 "$ird/init"
(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img.tmp"
mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "mkguest: $out/initrd.img ($(cat "$out/kernel.version"), $(wc -l < "$out/modules/order") modules)"
