#!/bin/bash
# End-to-end test of the gated package on real kernel GPIO lines: the amd64
# .deb installed in a debootstrapped Debian bookworm booted under
# qemu-system-x86_64 (TCG: no KVM needed, -smp 1) with a pinned Debian
# kernel and gpio-sim, an out-of-tree module built here from the same
# kernel's source. udev runs, the package's udev rule and unit are used as
# shipped, gated.service drives lines named as the example wiring's pins
# (configs/gated.toml), and test/e2e-gpio/guest.sh checks what the lines
# did, in the guest, through gpio-sim's sysfs and the kernel's trace.
#
#   test/e2e-gpio/run.sh [PATH/TO/gated_VERSION_amd64.deb]
#
# Without an argument it takes the newest dist/gated_*_amd64.deb, building
# one (packaging/build-deb.sh amd64) when there is none.
#
# Runs as root. Needs (Makefile DEPS): qemu-system-x86, debootstrap,
# e2fsprogs (mkfs.ext4 -d), cpio, busybox-static, kmod (depmod), xz-utils,
# gcc-12 and make (the module), and apt's lists of bookworm-security.
#
# Cached under $GATED_E2E_GPIO_CACHE (default /var/cache/gated-e2e-gpio),
# each item keyed by a hash of its recipe (the pinned versions and the
# shell functions below that make it): the kernel packages (~280 MB), the
# built module, the debootstrapped rootfs, and the bootable image (rootfs
# plus kernel modules, gpio-sim and the test driver unit; a first-stage
# initramfs). A cold run takes several minutes; a cached one boots the
# image with its writes thrown away (snapshot=on) and a small payload disk
# holding the .deb and guest.sh.
#
# Prints guest.sh's PASS/FAIL per check and "e2e-gpio: N passed, N failed";
# exits 1 on any failure, 2 when the test could not run at all (under
# CI=true that fails CI as surely: nothing here ever skips).
set -euo pipefail

# The kernel: Debian's bookworm-security linux 6.12, pinned. It has
# CONFIG_GPIO_CDEV but neither CONFIG_GPIO_SIM nor CONFIG_IRQ_SIM. The
# security archive drops old versions: to bump, pick one that
# `apt-cache madison linux-source-6.12` lists, and set kabi (the ABI name
# in the package names, linux-image-<kabi>-amd64-unsigned) and kdeb (the
# Debian version, the same for all five packages) from
#     apt-cache policy linux-image-6.12.*+deb12-amd64-unsigned
# Every cached item is keyed by them: the next run rebuilds.
kabi=6.12.117+deb12
kdeb=6.12.117-1~deb12u1
kflavour=amd64
krelease=$kabi-$kflavour
kpkgs=(
	"linux-image-$krelease-unsigned=$kdeb"
	"linux-headers-$krelease=$kdeb"
	"linux-headers-$kabi-common=$kdeb"
	"linux-kbuild-$kabi=$kdeb"
	"linux-source-6.12=$kdeb"
)

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/test/e2e-gpio
cache=${GATED_E2E_GPIO_CACHE:-/var/cache/gated-e2e-gpio}
mirror=${GATED_E2E_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=systemd,systemd-sysv,udev,dbus,kmod,procps,mosquitto,mosquitto-clients
# The guest's whole run: 2-3 minutes under TCG, 5 on a machine loaded by
# other work; a guest that hangs is killed after this.
guest_timeout=${GATED_E2E_GPIO_TIMEOUT:-900}
t0=$(date +%s)

log() { printf 'e2e-gpio: [%3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }
die() { log "ERROR: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
for tool in qemu-system-x86_64 debootstrap mkfs.ext4 cpio busybox depmod xz x86_64-linux-gnu-gcc-12 make apt-get dpkg-deb flock timeout; do
	command -v "$tool" >/dev/null ||
		die "$tool is missing: apt-get install qemu-system-x86 debootstrap e2fsprogs cpio busybox-static kmod xz-utils gcc-12 make (make deps)"
done
busybox_bin=$(command -v busybox)
file -L "$busybox_bin" 2>/dev/null | grep -q 'statically linked' || die "$busybox_bin is not static: apt-get install busybox-static"

deb=${1:-}
if [ -z "$deb" ]; then
	deb=$(ls -t "$root"/dist/gated_*_amd64.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		log "no dist/gated_*_amd64.deb: building one"
		LINTIAN=0 "$root/packaging/build-deb.sh" amd64
		deb=$(ls -t "$root"/dist/gated_*_amd64.deb | head -n 1)
	fi
fi
[ -f "$deb" ] || die "no such package: $deb"
log "package $deb"

# The example wiring's pins, as configs/gated.toml gives them ("GPIO17").
example_pin() {
	sed -n "s/^$1 *= *\"\" *#.*\"\\(GPIO[0-9]*\\)\".*/\\1/p" "$root/configs/gated.toml" | head -n 1
}
params=
for key in open_limit closed_limit obstruction motor_open motor_close motor_stop siren; do
	pin=$(example_pin "$key")
	[ -n "$pin" ] || die "configs/gated.toml gives no example pin for $key"
	params+="$(tr a-z A-Z <<<"$key")=$pin"$'\n'
done

hash() { printf '%s' "$*" | sha256sum | cut -c1-16; }
mkdir -p "$cache"
# One builder at a time: a second run waits for the first one's cache.
exec 9>"$cache/.lock"
flock 9

# --- the kernel packages -----------------------------------------------------
kkey=$(hash "${kpkgs[*]}")
debs=$cache/debs-$kkey
fetch_debs() {
	local tmp=$debs.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${kpkgs[@]}") > "$cache/apt-download.log" 2>&1; then
		log "apt-get download failed: apt-get update, then once more"
		apt-get -o DPkg::Lock::Timeout=600 update -qq >> "$cache/apt-download.log" 2>&1 || true
		if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${kpkgs[@]}") >> "$cache/apt-download.log" 2>&1; then
			tail -n 5 "$cache/apt-download.log" >&2
			die "cannot download the pinned kernel packages ($kdeb): the security archive may have dropped them; bump kabi/kdeb in $0"
		fi
	fi
	mv "$tmp" "$debs"
}
if [ ! -d "$debs" ]; then
	log "downloading the kernel packages ($kabi, $kdeb)"
	rm -rf "$cache"/debs-*
	fetch_debs
fi
deb_of() { ls "$debs"/"$1"_*.deb; }

# --- gpio-sim, out of tree ------------------------------------------------------
# drivers/gpio/gpio-sim.c and kernel/irq/irq_sim.c of the same source, as one
# module against the same headers, unpacked (no install: their Makefile
# names /usr/src, rewritten here). irq_to_desc() is not exported to modules;
# generic_handle_irq() does the same there. No pahole: no BTF for it.
build_module() {
	local out=$1 tmp
	tmp=$(mktemp -d /var/tmp/gated-e2e-gpio-mod.XXXXXX)
	for p in "linux-headers-$krelease" "linux-headers-$kabi-common" "linux-kbuild-$kabi"; do
		dpkg-deb -x "$(deb_of "$p")" "$tmp/hdr"
	done
	local kdir=$tmp/hdr/usr/src/linux-headers-$krelease
	sed -i "s|/usr/src/|$tmp/hdr/usr/src/|g" "$kdir/Makefile"
	dpkg-deb --fsys-tarfile "$(deb_of linux-source-6.12)" |
		tar -xOf - ./usr/src/linux-source-6.12.tar.xz | xz -dc |
		tar -xf - -C "$tmp" linux-source-6.12/drivers/gpio/gpio-sim.c linux-source-6.12/kernel/irq/irq_sim.c
	mkdir "$tmp/mod"
	cp "$tmp/linux-source-6.12/drivers/gpio/gpio-sim.c" "$tmp/mod/gpio-sim-core.c"
	sed 's/handle_simple_irq(irq_to_desc(irqnum))/generic_handle_irq(irqnum)/' \
		"$tmp/linux-source-6.12/kernel/irq/irq_sim.c" > "$tmp/mod/irq_sim.c"
	grep -q 'generic_handle_irq(irqnum)' "$tmp/mod/irq_sim.c" || { echo "irq_sim.c: no irq_to_desc call to replace" >&2; return 1; }
	printf 'obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-core.o irq_sim.o\n' > "$tmp/mod/Kbuild"
	make -C "$kdir" M="$tmp/mod" CONFIG_DEBUG_INFO_BTF_MODULES= modules
	mkdir -p "$out"
	cp "$tmp/mod/gpio-sim.ko" "$out/"
	rm -rf "$tmp"
}
mkey=$(hash "$kkey" "$(declare -f build_module)")
module=$cache/module-$mkey
if [ ! -e "$module/gpio-sim.ko" ]; then
	log "building gpio-sim for $krelease (log: $cache/module.log)"
	rm -rf "$cache"/module-*
	build_module "$module.tmp" > "$cache/module.log" 2>&1 || { tail -n 20 "$cache/module.log" >&2; die "building gpio-sim failed"; }
	mv "$module.tmp" "$module"
fi

# --- the debootstrapped rootfs ------------------------------------------------------
rkey=$(hash "v1 $suite minbase $packages $mirror")
rootfs=$cache/rootfs-$rkey
if [ ! -e "$rootfs/.gated-e2e-gpio-complete" ]; then
	log "debootstrap $suite ($packages) into $rootfs (cached for later runs)"
	rm -rf "$cache"/rootfs-*
	if ! debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs.tmp" "$mirror" > "$cache/debootstrap.log" 2>&1; then
		tail -n 20 "$cache/debootstrap.log" >&2
		die "debootstrap failed (log: $cache/debootstrap.log)"
	fi
	chroot "$rootfs.tmp" apt-get clean
	touch "$rootfs.tmp/.gated-e2e-gpio-complete"
	mv "$rootfs.tmp" "$rootfs"
fi

# --- the bootable image ----------------------------------------------------------------
# The rootfs with the kernel's modules and gpio-sim, a unit that runs the
# payload disk's guest.sh once booted and powers off, as an ext4 image; the
# kernel; a busybox initramfs that loads the modules the root disk needs
# (virtio_blk, ext4: modules in Debian's kernel) and switches to it.
build_image() {
	local out=$1 tmp
	tmp=$(mktemp -d /var/tmp/gated-e2e-gpio-img.XXXXXX)
	local r=$tmp/root k=$tmp/kernel
	cp -a "$rootfs" "$r"
	rm "$r/.gated-e2e-gpio-complete"
	dpkg-deb -x "$(deb_of "linux-image-$krelease-unsigned")" "$k"
	mkdir -p "$r/usr/lib/modules" "$out"
	cp -a "$k/lib/modules/$krelease" "$r/usr/lib/modules/"
	install -D -m 0644 "$module/gpio-sim.ko" "$r/usr/lib/modules/$krelease/updates/gpio-sim.ko"
	depmod -b "$r" "$krelease"
	cp "$k/boot/vmlinuz-$krelease" "$out/vmlinuz"

	echo gated-e2e-gpio > "$r/etc/hostname"
	printf '127.0.0.1\tlocalhost gated-e2e-gpio\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$r/etc/hosts"
	printf '/dev/vda / ext4 rw 0 0\n' > "$r/etc/fstab"
	: > "$r/etc/machine-id"
	# Nothing the test needs, and time on an emulated CPU.
	for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
		systemd-timesyncd.service getty@tty1.service; do
		ln -sf /dev/null "$r/etc/systemd/system/$u"
	done
	cat > "$r/usr/local/sbin/e2e-gpio-run" <<-'EOF'
	#!/bin/sh
	# The payload disk (/dev/vdb): guest.sh, params and gated.deb. The
	# results go to the second serial port, then the guest powers off.
	stty -F /dev/ttyS1 115200 raw -echo
	mkdir -p /run/e2e
	for i in $(seq 1 100); do [ -b /dev/vdb ] && break; sleep 0.1; done
	if mount -o ro /dev/vdb /run/e2e; then
		bash /run/e2e/guest.sh /run/e2e > /dev/ttyS1 2>&1 < /dev/null
	else
		echo "e2e-gpio: CANNOT-RUN: no payload disk" > /dev/ttyS1
	fi
	sync
	systemctl poweroff --force --force
	EOF
	chmod 0755 "$r/usr/local/sbin/e2e-gpio-run"
	cat > "$r/etc/systemd/system/e2e-gpio.service" <<-'EOF'
	[Unit]
	Description=gated e2e-gpio checks (test/e2e-gpio/guest.sh)
	After=basic.target
	[Service]
	Type=exec
	ExecStart=/usr/local/sbin/e2e-gpio-run
	[Install]
	WantedBy=multi-user.target
	EOF
	ln -sf /etc/systemd/system/e2e-gpio.service "$r/etc/systemd/system/multi-user.target.wants/e2e-gpio.service"

	# The initramfs: busybox, the root disk's modules (decompressed: busybox's
	# insmod takes plain .ko files) in modules.dep's order, and /init.
	local i=$tmp/initramfs m dep want=
	mkdir -p "$i/bin" "$i/proc" "$i/sys" "$i/dev" "$i/newroot" "$i/lib/modules"
	cp "$busybox_bin" "$i/bin/busybox"
	for m in crc32c_generic virtio_blk ext4; do
		dep=$(grep -E "(^|/)$m\.ko(\.xz)?:" "$r/usr/lib/modules/$krelease/modules.dep") || { echo "no module $m" >&2; return 1; }
		# dependencies last to first, then the module itself
		for x in $(echo "${dep#*:}" | tr ' ' '\n' | tac) "${dep%%:*}"; do
			case " $want " in *" $x "*) ;; *) want="$want $x" ;; esac
		done
	done
	for x in $want; do
		m=$(basename "${x%.xz}")
		if [ "${x%.xz}" != "$x" ]; then
			xz -dc "$r/usr/lib/modules/$krelease/$x" > "$i/lib/modules/$m"
		else
			cp "$r/usr/lib/modules/$krelease/$x" "$i/lib/modules/$m"
		fi
		echo "$m" >> "$i/lib/modules/order"
	done
	cat > "$i/init" <<-'EOF'
	#!/bin/busybox sh
	/bin/busybox --install -s /bin
	mount -t proc proc /proc
	mount -t sysfs sysfs /sys
	mount -t devtmpfs devtmpfs /dev
	for m in $(cat /lib/modules/order); do
		insmod /lib/modules/$m || echo "initramfs: insmod $m failed"
	done
	for i in $(seq 1 100); do [ -b /dev/vda ] && break; sleep 0.05; done
	if ! mount -t ext4 -o rw /dev/vda /newroot; then
		echo "initramfs: cannot mount /dev/vda"
		poweroff -f
	fi
	umount /proc /sys /dev
	exec switch_root /newroot /sbin/init
	EOF
	chmod 0755 "$i/init"
	(cd "$i" && find . | cpio -o -H newc --quiet | gzip -1) > "$out/initrd.img"

	rm -f "$out/rootfs.img"
	mkfs.ext4 -q -L gated-e2e-gpio -d "$r" "$out/rootfs.img" 2G
	rm -rf "$tmp"
}
ikey=$(hash "$rkey" "$kkey" "$mkey" "$(declare -f build_image)")
image=$cache/image-$ikey
if [ ! -e "$image/rootfs.img" ]; then
	log "building the guest image (kernel $krelease, gpio-sim; log: $cache/image.log)"
	rm -rf "$cache"/image-*
	build_image "$image.tmp" > "$cache/image.log" 2>&1 || { tail -n 20 "$cache/image.log" >&2; die "building the image failed"; }
	mv "$image.tmp" "$image"
fi
exec 9>&-
log "cached: $debs, $module, $rootfs, $image"

# --- the run ---------------------------------------------------------------------------
run=$(mktemp -d /var/tmp/gated-e2e-gpio.XXXXXX)
qpid=
cleanup() {
	local rc=$?
	set +e
	if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
		kill "$qpid"
		wait "$qpid" 2>/dev/null
	fi
	if [ "${GATED_E2E_KEEP:-0}" = 1 ]; then
		log "kept $run (console: $run/console.log)" >&2
	else
		rm -rf "$run"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$run/payload"
cp "$deb" "$run/payload/gated.deb"
cp "$here/guest.sh" "$run/payload/guest.sh"
printf '%s' "$params" > "$run/payload/params"
mkfs.ext4 -q -L payload -d "$run/payload" "$run/payload.img" 64M >/dev/null
: > "$run/results.log"

log "booting $krelease under qemu-system-x86_64 (TCG, -smp 1)"
timeout --signal=KILL "$guest_timeout" qemu-system-x86_64 \
	-machine pc -accel tcg -smp 1 -m 1024 \
	-nodefaults -no-user-config -display none -no-reboot -nic none \
	-kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
	-append "console=ttyS0,115200 root=/dev/vda rw panic=-1 quiet loglevel=4 systemd.show_status=false" \
	-drive "file=$image/rootfs.img,format=raw,if=virtio,snapshot=on" \
	-drive "file=$run/payload.img,format=raw,if=virtio,readonly=on" \
	-device virtio-rng-pci \
	-serial "file:$run/console.log" -serial "file:$run/results.log" &
qpid=$!
# The guest's lines as they come.
tail --pid="$qpid" -n +1 -f "$run/results.log" | tr -d '\r' | grep --line-buffered -v '^e2e-gpio-guest: finished$' || true
wait "$qpid" && qrc=0 || qrc=$?
qpid=

results=$(tr -d '\r' < "$run/results.log")
passed=$(grep -c 'e2e-gpio: \[ *[0-9]*s\] PASS: ' <<<"$results" || true)
failed=$(grep -c 'e2e-gpio: \[ *[0-9]*s\] FAIL: ' <<<"$results" || true)
if grep -q 'CANNOT-RUN: ' <<<"$results"; then
	tail -n 30 "$run/console.log" >&2
	die "the guest could not run the checks (see above)"
fi
if ! grep -q '^e2e-gpio-guest: finished$' <<<"$results"; then
	failed=$((failed + 1))
	log "FAIL: the guest's checks ran to their end (qemu exit status $qrc; console's last lines below)"
	tail -n 40 "$run/console.log" | tr -d '\r' | sed 's/^/    /' >&2
fi
[ $((passed + failed)) -gt 0 ] || die "no check ran (console: $run/console.log)"
log "done in $(($(date +%s) - t0))s"
echo "e2e-gpio: $passed passed, $failed failed"
[ "$failed" = 0 ]
