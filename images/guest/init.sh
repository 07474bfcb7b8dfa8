#!/bin/busybox sh
# init.sh — PID 1 of a nearfield sample guest: mounts the rootfs, starts a known workload, prints ground truth.
# build-guest.mjs copies this into the initramfs as /init and fills in /etc/nf-modules and /etc/nf-hostname.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /mnt/root
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs -o mode=0755 tmpfs /run
# Keep kernel messages off the console; they still reach the log buffer (and truth's kmsg section).
dmesg -n 1
# Let root read real addresses in /proc/kallsyms and /proc/modules (ground truth for KASLR).
echo 0 > /proc/sys/kernel/kptr_restrict
hostname "$(cat /etc/nf-hostname)"

say() { echo "nf-init: $*"; }

# ---- drivers: modules in dependency order ----
for module in $(cat /etc/nf-modules); do
    insmod "/lib/modules/nf/$module.ko" || say "insmod $module failed"
done

# ---- the root filesystem on virtio-blk ----
tries=0
while [ ! -b /dev/vda ] && [ $tries -lt 100 ]; do usleep 100000; tries=$((tries + 1)); done
if mount -t ext4 /dev/vda /mnt/root; then
    # Move the free counts: write a few MB, delete a file, then read a file into the page cache.
    mkdir -p /mnt/root/var/nf
    dd if=/dev/zero of=/mnt/root/var/nf/zeros.bin bs=1M count=3 2>/dev/null
    seq 1 200000 > /mnt/root/var/nf/numbers.txt
    echo "written by the guest at boot" > /mnt/root/var/nf/hello.txt
    rm -f /mnt/root/data/remove-me.txt
    cat /mnt/root/boot/vmlinuz-* > /dev/null
    sync
    # Freezing flushes the journal to the filesystem's home locations, so the image on the host
    # carries the same group-descriptor counts that statfs reports in here.
    fsfreeze --freeze /mnt/root && fsfreeze --unfreeze /mnt/root
else
    say "mounting /dev/vda failed"
fi

# ---- the workload: named processes with known shapes ----
mkdir -p /run/nf-ready
chmod 1777 /run/nf-ready
wait_ready() {
    for name in "$@"; do
        tries=0
        while [ ! -e "/run/nf-ready/$name" ] && [ $tries -lt 600 ]; do usleep 50000; tries=$((tries + 1)); done
        [ -e "/run/nf-ready/$name" ] || say "$name never became ready"
    done
}

/bin/worker nf-small 4 &
/bin/worker nf-big 48 &
/bin/worker nf-threads 8 3 &
/bin/worker nf-longcmd 1 0 --alpha=1 --beta "two words" --gamma= "" last-arg &
/bin/asuser 1000 1000 /bin/worker nf-user 2 &
# A comm with a space and parentheses: /proc/PID/stat parsers must split at the last ')'.
/bin/worker "nf) odd (x" 1 &
/bin/worker nf-nice 1 &
renice -n 10 -p $! > /dev/null
/bin/worker nf-stopped 1 &
stopped=$!
/bin/zombie nf-zparent nf-zombie &
wait_ready nf-small nf-big nf-threads nf-longcmd nf-user "nf) odd (x" nf-nice nf-stopped nf-zparent
kill -STOP $stopped

# The spinner keeps one CPU busy; give the load average one 5-second update before printing.
/bin/spinner nf-spin &
wait_ready nf-spin
sleep 6
say "workload ready"

# ---- ground truth on the second serial port; truth never returns (it pauses after printing) ----
/bin/truth /dev/ttyS1 /mnt/root
say "truth exited unexpectedly"
while true; do sleep 3600; done
