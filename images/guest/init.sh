#!/bin/busybox sh
# init.sh — PID 1 of a nearfield sample guest: mounts the rootfs, starts a known workload, prints ground truth.
# build-guest.mjs copies this into the initramfs as /init and fills in /etc/nf-modules, /etc/nf-hostname and
# /etc/nf-scenario (none | hung | panic).

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
scenario=$(cat /etc/nf-scenario 2>/dev/null || echo none)
mkdir -p /run/nf-scenario
echo "$scenario" > /run/nf-scenario/name

say() { echo "nf-init: $*"; }

mkdir -p /run/nf-ready
chmod 1777 /run/nf-ready
wait_ready() {
    for name in "$@"; do
        tries=0
        while [ ! -e "/run/nf-ready/$name" ] && [ $tries -lt 600 ]; do usleep 50000; tries=$((tries + 1)); done
        [ -e "/run/nf-ready/$name" ] || say "$name never became ready"
    done
}

# The state letter of a task (field 3 of /proc/PID/stat, after the last ')').
state_of() {
    stat=$(cat "/proc/$1/stat" 2>/dev/null)
    stat=${stat##*") "}
    echo "${stat%% *}"
}
wait_state() {
    want=$1
    shift
    for pid in "$@"; do
        tries=0
        while [ "$(state_of "$pid")" != "$want" ] && [ $tries -lt 500 ]; do usleep 20000; tries=$((tries + 1)); done
        [ "$(state_of "$pid")" = "$want" ] || say "pid $pid is not in state $want but $(state_of "$pid")"
    done
}

# ---- drivers: modules in dependency order ----
load_modules() {
    for module in $(cat /etc/nf-modules); do
        insmod "/lib/modules/nf/$module.ko" || say "insmod $module failed"
    done
}

# ---- cgroup v2: /nf/web and /nf/batch with the cpu, memory and pids controllers ----
CG=/sys/fs/cgroup
setup_cgroups() {
    mount -t cgroup2 cgroup2 $CG || { say "mounting cgroup2 failed"; return; }
    for controllers in $CG/cgroup.subtree_control $CG/nf/cgroup.subtree_control; do
        mkdir -p "${controllers%/*}"
        echo "+cpu +memory +pids" > "$controllers" || say "enabling controllers in $controllers failed"
    done
    mkdir -p $CG/nf/web $CG/nf/batch
    echo 64M > $CG/nf/batch/memory.max
    echo 50 > $CG/nf/batch/cpu.weight
    echo 100 > $CG/nf/web/pids.max
}
# Starts a command in the background inside /nf/GROUP from its first instruction, so what it allocates is
# charged there ("echo 0" moves the writing process: the subshell, which then execs the command).
in_cgroup() {
    group=$1
    shift
    ( echo 0 > "$CG/nf/$group/cgroup.procs" && exec "$@" ) &
}

# ---- network: loopback up, and a dummy interface with known addresses (no device leaves the guest) ----
setup_network() {
    ip link set lo up
    if [ -e /sys/class/net/dummy0 ]; then
        # No router solicitations and no duplicate address detection: nf0 stays quiet once configured.
        echo 0 > /proc/sys/net/ipv6/conf/dummy0/router_solicitations
        echo 0 > /proc/sys/net/ipv6/conf/dummy0/dad_transmits
        ip link set dummy0 name nf0
        ip link set nf0 address 02:6e:66:00:00:01 mtu 1400
        ip addr add 10.42.0.1/24 dev nf0
        ip -6 addr add fd42:6e66::1/64 dev nf0
        ip link set nf0 up
    fi
}

# ---- the root filesystem on virtio-blk ----
mount_rootfs() {
    tries=0
    while [ ! -b /dev/vda ] && [ $tries -lt 100 ]; do usleep 100000; tries=$((tries + 1)); done
    if ! mount -t ext4 /dev/vda /mnt/root; then
        say "mounting /dev/vda failed"
        return
    fi
    # Move the free counts: write a few MB, delete a file, then read a file into the page cache.
    mkdir -p /mnt/root/var/nf
    dd if=/dev/zero of=/mnt/root/var/nf/zeros.bin bs=1M count=3 2>/dev/null
    seq 1 200000 > /mnt/root/var/nf/numbers.txt
    echo "written by the guest at boot" > /mnt/root/var/nf/hello.txt
    rm -f /mnt/root/data/remove-me.txt
    cat /mnt/root/boot/vmlinuz-* > /dev/null
    # Open files of every kind, among them one deleted on this fs: it writes here, so before the freeze.
    in_cgroup batch env NF_QUOTED="two words = one value" NF_EMPTY= /bin/files nf-files /mnt/root /run
    wait_ready nf-files nf-pipe-rd
    sync
    # Freezing flushes the journal to the filesystem's home locations, so the image on the host
    # carries the same group-descriptor counts that statfs reports in here.
    fsfreeze --freeze /mnt/root && fsfreeze --unfreeze /mnt/root
}

# ---- the workload: named processes with known shapes ----
start_workload() {
    export NF_GUEST=nearfield-sample
    /bin/worker nf-small 4 &
    small=$!
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
    # A session of its own with the console as its controlling terminal (ps TTY ttyS0, STAT "s" and "+"): the
    # leader mlock()s its memory (STAT "L"); its child stays in the leader's, the foreground, process group.
    # (stdin given explicitly: without job control, ash gives a background command /dev/null)
    setsid -c sh -c '/bin/worker nf-session-fg 1 & exec env NF_MLOCK=1 /bin/worker nf-session 1' </dev/console &
    # Sockets: the server as root, the client as uid 1000, both in /nf/web from their start.
    in_cgroup web env NF_SERVICE=web NF_ROLE=server /bin/sockets server nf-net-srv
    in_cgroup web env NF_SERVICE=web NF_ROLE=client /bin/asuser 1000 1000 /bin/sockets client nf-net-cli
    # A worker whose memory is charged to /nf/batch (it allocates there).
    in_cgroup batch /bin/worker nf-batch 8
    wait_ready nf-small nf-big nf-threads nf-longcmd nf-user "nf) odd (x" nf-nice nf-stopped nf-zparent \
        nf-session nf-session-fg nf-net-srv nf-net-cli nf-batch
    kill -STOP $stopped
    # Moved after it allocated: its pages stay charged to the root cgroup.
    echo $small > $CG/nf/batch/cgroup.procs

    # The spinner keeps one CPU busy; give the load average one 5-second update before printing.
    /bin/spinner nf-spin &
    wait_ready nf-spin
    sleep 6
}

# ---- the hung scenario: writers blocked on the frozen rootfs, a lock chain behind them, khungtaskd's reports ----
HUNG_TIMEOUT_SECS=3
start_hung() {
    /bin/hang locker /mnt/root/data/mapped.bin /run/nf-frozen /run/nf-scenario/locks.json &
    locker=$!
    # truth must not read this process's cmdline, environ or maps: its mmap_lock will be contended.
    echo $locker > /run/nf-scenario/mm-locked-pids
    wait_ready nf-locker
    # dd's stdout is opened (O_APPEND) before the freeze, so dd blocks in write(): vfs_write → sb_start_write.
    # "/bin/dd", not "dd": busybox ash runs a bare applet name in-process (keeping the shell's cmdline).
    ( exec 3>>/mnt/root/var/nf/hung-dd.bin; while [ ! -e /run/nf-frozen ]; do usleep 20000; done
      exec /bin/dd if=/dev/zero bs=4096 count=16 >&3 2>/dev/null ) &
    dd=$!
    fsfreeze --freeze /mnt/root || say "fsfreeze failed"
    frozen_at=$(/bin/hang now)
    touch /run/nf-frozen
    # A shell redirect opened after the freeze: it blocks in open(): path_openat → mnt_want_write.
    sh -c 'echo "written while frozen" > /mnt/root/var/nf/hung-redirect.txt' &
    redirect=$!
    wait_ready nf-locker.blocked
    wait_state D $dd $redirect
    # khungtaskd checks once when the timeout is written (noting each task's switch count), and reports the
    # tasks still blocked in TASK_UNINTERRUPTIBLE one timeout later.
    echo 10 > /proc/sys/kernel/hung_task_warnings
    echo $HUNG_TIMEOUT_SECS > /proc/sys/kernel/hung_task_timeout_secs
    fault=$(sed -n 's/.*"role": "fault", "pid": [0-9]*, "tid": \([0-9]*\).*/\1/p' /run/nf-scenario/locks.json)
    pipewr=$(sed -n 's/.*"role": "pipe_writer", "pid": \([0-9]*\).*/\1/p' /run/nf-scenario/locks.json)
    for task in "dd:$dd" "sh:$redirect" "nf-lock/fault:$fault" "nf-lock-pipewr:$pipewr"; do
        tries=0
        while ! dmesg | grep -q "INFO: task $task blocked for more than" && [ $tries -lt 300 ]; do
            sleep 1
            tries=$((tries + 1))
        done
        dmesg | grep -q "INFO: task $task blocked for more than" || say "khungtaskd did not report $task"
    done
    # No further reports: the log stays as truth reads it until the pause.
    echo 0 > /proc/sys/kernel/hung_task_warnings
    cat > /run/nf-scenario/hung.json <<EOF
{"frozen_path": "/mnt/root", "frozen_at_boottime_ns": $frozen_at, "timeout_secs": $HUNG_TIMEOUT_SECS,
 "writers": [
  {"role": "dd", "pid": $dd, "comm": "dd", "not_before_boottime_ns": $frozen_at, "syscall": "write() to a file opened before the freeze"},
  {"role": "redirect", "pid": $redirect, "comm": "sh", "not_before_boottime_ns": $frozen_at, "syscall": "open(O_CREAT|O_TRUNC) of a file on the frozen fs"}
 ],
 "expected_reports": ["dd:$dd", "sh:$redirect", "nf-lock/fault:$fault", "nf-lock-pipewr:$pipewr"]}
EOF
}

load_modules
setup_cgroups
setup_network
mount_rootfs
start_workload
[ "$scenario" = hung ] && start_hung
say "workload ready (scenario $scenario)"

# ---- ground truth on the second serial port; truth never returns (it pauses after printing) ----
if [ "$scenario" = panic ]; then
    /bin/truth /dev/ttyS1 /mnt/root then-crash
elif [ "$scenario" = churn ]; then
    /bin/truth /dev/ttyS1 /mnt/root then-churn
else
    /bin/truth /dev/ttyS1 /mnt/root
fi
say "truth exited unexpectedly"
while true; do sleep 3600; done
