// truth-parse.mjs — turns the raw JSON that guest/truth.c prints (raw /proc texts) into truth.json's parsed fields (proc(5) layouts).

export const TRUTH_BEGIN = '===NF-TRUTH-BEGIN===';
export const TRUTH_END = '===NF-TRUTH-END===';
export const TRUTH_AT_END = '===NF-TRUTH-AT-END===';

const PF_KTHREAD = 0x00200000;

/** The JSON between the marker lines of the truth serial port, checked against the byte count after END,
    plus the at-end trailer (files re-read after the body was transmitted) as document.at_end_raw, or null. */
export function extractTruthJson(text) {
  const begin = text.lastIndexOf(`${TRUTH_BEGIN}\n`);
  if (begin < 0) throw new Error('truth: no BEGIN marker');
  const bodyStart = begin + TRUTH_BEGIN.length + 1;
  const end = text.indexOf(`${TRUTH_END} `, bodyStart);
  if (end < 0) throw new Error('truth: no END marker');
  const endLine = text.slice(end, text.indexOf('\n', end));
  const declared = /bytes=(\d+)/.exec(endLine)?.[1];
  // bytes= counts the body only; a trailer, when present, sits between the body and END.
  const trailerMarker = `${TRUTH_AT_END}\n`;
  const bodyEnd = declared !== undefined && text.startsWith(trailerMarker, bodyStart + Number(declared)) ? bodyStart + Number(declared) : end;
  const body = text.slice(bodyStart, bodyEnd);
  if (declared !== undefined && Number(declared) !== body.length) {
    throw new Error(`truth: ${body.length} bytes between markers, the guest wrote ${declared}`);
  }
  const document = JSON.parse(body);
  document.at_end_raw = bodyEnd < end ? JSON.parse(text.slice(bodyEnd + trailerMarker.length, end)) : null;
  const written = /written_boottime_ns=(\d+)/.exec(endLine)?.[1];
  document.written_boottime_ns = written === undefined ? null : Number(written);
  return document;
}

/** /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses, so split at the last ')'. */
export function parseStat(raw) {
  const open = raw.indexOf('(');
  const close = raw.lastIndexOf(')');
  const rest = raw.slice(close + 2).trim().split(' ');
  const field = (n) => rest[n - 3]; // proc(5) numbers fields from 1; field 3 is the first after comm
  const num = (n) => Number(field(n));
  return {
    pid: Number(raw.slice(0, open).trim()),
    comm: raw.slice(open + 1, close),
    state: field(3),
    ppid: num(4),
    pgrp: num(5),
    session: num(6),
    tty_nr: num(7),
    flags: num(9),
    minflt: num(10),
    majflt: num(12),
    utime: num(14),
    stime: num(15),
    priority: num(18),
    nice: num(19),
    num_threads: num(20),
    starttime: num(22),
    vsize: num(23),
    rss_pages: num(24),
    processor: num(39),
    rt_priority: num(40),
    policy: num(41),
  };
}

/** /proc/PID/status: "Key:\tvalue" lines. */
export function parseStatus(raw) {
  const fields = {};
  for (const line of (raw ?? '').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

const kB = (value) => (value === undefined ? null : Number(value.split(/\s+/)[0]));

/** /proc/PID/stack: "[<0>] symbol+0xoff/0xsize [module]" per frame, innermost first (addresses hidden as 0). */
export function parseStack(raw) {
  if (raw === null || raw === undefined) return null;
  return raw.split('\n').filter(Boolean).map((line) => {
    const m = /^\[<([0-9a-f]+)>\] (.+?)\+(0x[0-9a-f]+)\/(0x[0-9a-f]+)(?: \[(\S+)\])?$/.exec(line.trim());
    if (!m) return { symbol: line.trim(), offset: null, size: null, module: null };
    return { symbol: m[2], offset: Number(m[3]), size: Number(m[4]), module: m[5] ?? null };
  });
}

/** /proc/PID/fdinfo/N: "pos:\t0\nflags:\t0100002\nmnt_id:\t21\nino:\t123\n" plus per-type lines (eventfd-count, tfd, …). */
function parseFdinfo(raw) {
  const fields = {};
  for (const line of (raw ?? '').split('\n')) {
    const m = /^([\w-]+):\s*(.*)$/.exec(line);
    if (m && !(m[1] in fields)) fields[m[1]] = m[2].trim();
  }
  return {
    pos: fields.pos === undefined ? null : Number(fields.pos),
    flags: fields.flags === undefined ? null : parseInt(fields.flags, 8), // printed in octal
    mnt_id: fields.mnt_id === undefined ? null : Number(fields.mnt_id),
    ino: fields.ino === undefined ? null : Number(fields.ino), // since 5.14
  };
}

function parseFds(fds) {
  if (!fds) return null;
  return fds.map((f) => ({ fd: f.fd, target: f.target, ...parseFdinfo(f.fdinfo), fdinfo: f.fdinfo }));
}

/** /proc/PID/maps: "start-end perms offset major:minor inode   path". */
export function parseMaps(raw) {
  if (raw === null || raw === undefined) return null;
  return raw.split('\n').filter(Boolean).map((line) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/.exec(line);
    if (!m) return { raw: line };
    return { start: `0x${m[1]}`, end: `0x${m[2]}`, perms: m[3], offset: `0x${m[4]}`, dev: m[5], inode: Number(m[6]), path: m[7] === '' ? null : m[7] };
  });
}

/** /proc/PID/environ: NUL-terminated "KEY=value" strings, in the order the process's stack holds them. */
function parseEnviron(raw) {
  if (raw === null || raw === undefined) return null;
  const list = raw.split('\0');
  if (list.at(-1) === '') list.pop();
  return list;
}

/** /proc/PID/task/TID/sched: "key : value" lines after a header; numbers where they are numbers. */
function parseSched(raw) {
  if (!raw) return null;
  const out = {};
  for (const line of raw.split('\n')) {
    const m = /^([\w.]+)\s+:\s+(\S+)$/.exec(line.trim());
    if (m) out[m[1]] = Number.isNaN(Number(m[2])) ? m[2] : Number(m[2]);
  }
  return out;
}

/** /proc/PID/syscall: "NR arg0 … arg5 sp pc", "running", or "-1 sp pc" (blocked outside a syscall). */
function parseSyscall(raw) {
  const text = (raw ?? '').trim();
  if (!text) return null;
  if (text === 'running') return { running: true, nr: null, args: [] };
  const words = text.split(/\s+/);
  return { running: false, nr: Number(words[0]), args: words.length === 9 ? words.slice(1, 7) : [] };
}

function parseTask(t) {
  const ts = parseStat(t.stat);
  return {
    tid: t.tid, comm: ts.comm, state: ts.state, utime: ts.utime, stime: ts.stime, starttime: ts.starttime, nice: ts.nice, priority: ts.priority, processor: ts.processor,
    wchan: t.wchan === undefined || t.wchan === null ? null : t.wchan.trim(),
    stack: parseStack(t.stack),
    syscall: parseSyscall(t.syscall),
    sched: t.sched === undefined ? null : parseSched(t.sched),
  };
}

function parseProcess(p) {
  if (p.stat === null || p.status === null) return null; // exited between readdir and read
  const stat = parseStat(p.stat);
  const status = parseStatus(p.status);
  const [uid, euid, suid, fsuid] = (status.Uid ?? '').split(/\s+/).map(Number);
  const [gid, egid, sgid, fsgid] = (status.Gid ?? '').split(/\s+/).map(Number);
  const threads = (p.tasks ?? []).filter((t) => t.stat !== null).map(parseTask);
  return {
    pid: p.pid,
    tgid: Number(status.Tgid),
    ppid: stat.ppid,
    comm: stat.comm,
    state: stat.state,
    uid, gid, euid, egid, suid, sgid, fsuid, fsgid,
    nice: stat.nice,
    priority: stat.priority,
    num_threads: stat.num_threads,
    starttime: stat.starttime,
    utime: stat.utime,
    stime: stat.stime,
    vsize: stat.vsize,
    rss_pages: stat.rss_pages,
    flags: stat.flags,
    kernel_thread: (stat.flags & PF_KTHREAD) !== 0,
    processor: stat.processor,
    vm_rss_kb: kB(status.VmRSS),
    rss_anon_kb: kB(status.RssAnon),
    rss_file_kb: kB(status.RssFile),
    rss_shmem_kb: kB(status.RssShmem),
    // null when the printer skipped reading it (mm_skipped: the hung scenario's nf-locker, whose mmap_lock is contended)
    cmdline: p.mm_skipped ? null : (p.cmdline ?? []),
    mm_skipped: p.mm_skipped === true,
    // the cgroup v2 path from /proc/PID/cgroup ("0::/nf/web")
    cgroup: /^0::(.*)$/m.exec(p.cgroup ?? '')?.[1] ?? null,
    environ: parseEnviron(p.environ),
    maps: parseMaps(p.maps),
    fds: parseFds(p.fds),
    ...(() => {
      const main = threads.find((t) => t.tid === p.pid);
      return { wchan: main?.wchan ?? null, stack: main?.stack ?? null };
    })(),
    threads,
    raw: { stat: p.stat, status: p.status, cgroup: p.cgroup ?? null, maps: p.maps ?? null },
  };
}

/** /proc/meminfo → {Field: kB} (HugePages_* counts are plain numbers). */
export function parseMeminfo(raw) {
  const out = {};
  for (const line of (raw ?? '').split('\n')) {
    const m = /^([^:]+):\s+(\d+)/.exec(line);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** /proc/buddyinfo → [{node, zone, free: [count per order 0..10]}]. */
export function parseBuddyinfo(raw) {
  return (raw ?? '').split('\n').filter(Boolean).map((line) => {
    const m = /^Node (\d+), zone\s+(\S+)\s+(.*)$/.exec(line);
    return { node: Number(m[1]), zone: m[2], free: m[3].trim().split(/\s+/).map(Number) };
  });
}

export function parseLoadavg(raw) {
  const [load1, load5, load15, runTotal, lastPid] = raw.trim().split(/\s+/);
  const [running, total] = runTotal.split('/').map(Number);
  return { load1: Number(load1), load5: Number(load5), load15: Number(load15), running, total, last_pid: Number(lastPid) };
}

function parseKeyValueLines(raw) {
  const out = {};
  for (const line of (raw ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined) out[key] = Number(value);
  }
  return out;
}

/** /proc/modules: "name size refcount deps state address". */
function parseModules(raw) {
  return (raw ?? '').split('\n').filter(Boolean).map((line) => {
    const [name, size, refcount, deps, state, address] = line.split(' ');
    return { name, size: Number(size), refcount: Number(refcount), deps: deps === '-' ? [] : deps.split(',').filter(Boolean), state, address };
  });
}

function parseMounts(raw) {
  return (raw ?? '').split('\n').filter(Boolean).map((line) => {
    const [device, mountpoint, fstype, options] = line.split(' ');
    return { device, mountpoint, fstype, options: options.split(',') };
  });
}

/** /dev/kmsg records: "level+facility*8,seq,usec,flags[,…];text\n[ KEY=value\n…]". */
function parseKmsg(records) {
  return records.map((raw) => {
    const semi = raw.indexOf(';');
    const [prefix, seq, usec, flags] = raw.slice(0, semi).split(',');
    const lines = raw.slice(semi + 1).split('\n');
    return {
      seq: Number(seq),
      ts_usec: Number(usec),
      level: Number(prefix) & 7,
      facility: Number(prefix) >> 3,
      flags,
      text: lines[0],
      dict: lines.slice(1).filter((l) => l.startsWith(' ')).map((l) => l.trim()),
    };
  });
}

/** The filtered /proc/kallsyms lines → {name: {address, type}}. */
function parseKallsyms(raw) {
  const out = {};
  for (const line of (raw ?? '').split('\n').filter(Boolean)) {
    const [address, type, name] = line.split(' ');
    out[name] = { address: `0x${address}`, type };
  }
  return out;
}

function parseUptime(raw) {
  const [uptime, idle] = raw.trim().split(/\s+/).map(Number);
  return { uptime_s: uptime, idle_s: idle };
}

// ---------------------------------------------------------------- network (proc(5), net/ipv4/tcp_ipv4.c, net/unix/af_unix.c)

const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV'];

/** RFC 5952 text for eight hex groups: the longest run (≥ 2) of zero groups becomes "::". */
function compressIpv6(groups) {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** "0100007F:1B59": IPv4 is the __be32 printed as a host-order (little-endian) u32; IPv6 is four such words. */
function parseInetAddress(text) {
  const [hex, port] = text.split(':');
  const bytes = [];
  for (let w = 0; w < hex.length / 8; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    for (let b = 3; b >= 0; b--) bytes.push(parseInt(word.slice(b * 2, b * 2 + 2), 16));
  }
  if (bytes.length === 4) return { address: bytes.join('.'), port: parseInt(port, 16) };
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return { address: compressIpv6(groups), port: parseInt(port, 16) };
}

/** /proc/net/{tcp,tcp6,udp,udp6}: one row per socket. */
function parseInetSockets(raw, family, protocol) {
  return (raw ?? '').split('\n').slice(1).filter((l) => l.trim()).map((line) => {
    const w = line.trim().split(/\s+/);
    const local = parseInetAddress(w[1]);
    const remote = parseInetAddress(w[2]);
    const state = parseInt(w[3], 16);
    const [tx, rx] = w[4].split(':').map((x) => parseInt(x, 16));
    return {
      protocol, family,
      local_address: local.address, local_port: local.port,
      remote_address: remote.address, remote_port: remote.port,
      // UDP reuses the TCP state numbers: 7 (CLOSE) unconnected, 1 (ESTABLISHED) connected
      state: TCP_STATES[state] ?? String(state), state_code: state,
      tx_queue: tx, rx_queue: rx,
      uid: Number(w[7]),
      inode: Number(w[9]),
    };
  });
}

const UNIX_TYPES = { 1: 'STREAM', 2: 'DGRAM', 5: 'SEQPACKET' };
const UNIX_STATES = { 1: 'UNCONNECTED', 2: 'CONNECTING', 3: 'CONNECTED', 4: 'DISCONNECTING' };
const SO_ACCEPTCON = 0x10000; // __SO_ACCEPTCON in the Flags column: a listening socket

/** /proc/net/unix: "Num: RefCount Protocol Flags Type St Inode [Path]" (a Path "@name" is abstract). */
function parseUnixSockets(raw) {
  return (raw ?? '').split('\n').slice(1).filter((l) => l.trim()).map((line) => {
    const m = /^(\S+): (\S+) (\S+) (\S+) (\S+) (\S+)\s+(\d+)(?: (.*))?$/.exec(line.trim());
    if (!m) return { raw: line };
    const flags = parseInt(m[4], 16);
    const type = parseInt(m[5], 16);
    const st = parseInt(m[6], 16);
    return {
      refcount: parseInt(m[2], 16), flags, type: UNIX_TYPES[type] ?? String(type),
      state: flags & SO_ACCEPTCON ? 'LISTEN' : UNIX_STATES[st] ?? String(st), state_code: st,
      inode: Number(m[7]), path: m[8] ?? null,
    };
  });
}

const NET_DEV_FIELDS = ['rx_bytes', 'rx_packets', 'rx_errs', 'rx_drop', 'rx_fifo', 'rx_frame', 'rx_compressed', 'rx_multicast',
  'tx_bytes', 'tx_packets', 'tx_errs', 'tx_drop', 'tx_fifo', 'tx_colls', 'tx_carrier', 'tx_compressed'];

/** /proc/net/dev → {iface: {rx_bytes, …, tx_compressed}}. */
function parseNetDev(raw) {
  if (raw === null || raw === undefined) return null;
  const out = {};
  for (const line of raw.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const values = line.slice(colon + 1).trim().split(/\s+/).map(Number);
    out[line.slice(0, colon).trim()] = Object.fromEntries(NET_DEV_FIELDS.map((f, i) => [f, values[i]]));
  }
  return out;
}

/** /proc/net/if_inet6: "addr(32 hex) ifindex prefixlen scope flags name", all hex. */
function parseIfInet6(raw) {
  return (raw ?? '').split('\n').filter(Boolean).map((line) => {
    const [hex, ifindex, prefix, scope, flags, name] = line.trim().split(/\s+/);
    const groups = [];
    for (let i = 0; i < 32; i += 4) groups.push(parseInt(hex.slice(i, i + 4), 16).toString(16));
    return { name, address: compressIpv6(groups), ifindex: parseInt(ifindex, 16), prefixlen: parseInt(prefix, 16), scope: parseInt(scope, 16), flags: parseInt(flags, 16) };
  });
}

const bitCount = (n) => n.toString(2).replace(/0/g, '').length;
const prefixLength = (netmask) => {
  if (netmask === null || netmask === undefined) return null;
  if (!netmask.includes(':')) return netmask.split('.').reduce((n, o) => n + bitCount(Number(o)), 0);
  return netmask.split(':').reduce((n, g) => n + (g === '' ? 0 : bitCount(parseInt(g, 16))), 0);
};

/** /sys/class/net/IF attributes plus the addresses getifaddrs (and /proc/net/if_inet6, for scope) list per interface. */
function parseInterfaces(interfaces, ifaddrs, ifInet6) {
  return (interfaces ?? []).map((i) => {
    const attr = (name) => (i.sysfs[name] === null || i.sysfs[name] === undefined ? null : i.sysfs[name].trim());
    const num = (name) => (attr(name) === null ? null : Number(attr(name)));
    return {
      name: i.name,
      ifindex: num('ifindex'), iflink: num('iflink'),
      mac: attr('address'), broadcast: attr('broadcast'), addr_len: num('addr_len'),
      mtu: num('mtu'),
      flags: attr('flags') === null ? null : parseInt(attr('flags'), 16), // IFF_* (0x1 UP, 0x8 LOOPBACK, 0x40 RUNNING …)
      operstate: attr('operstate'), type: num('type'), tx_queue_len: num('tx_queue_len'),
      carrier: attr('carrier') === null ? null : Number(attr('carrier')),
      addresses: (ifaddrs ?? []).filter((a) => a.name === i.name).map((a) => {
        const v6 = a.family === 'inet6' ? ifInet6.find((x) => x.name === i.name && x.address === a.address) : undefined;
        return {
          family: a.family, address: a.address, prefixlen: prefixLength(a.netmask), broadcast: a.broadcast,
          ...(v6 ? { scope: v6.scope, ifa_flags: v6.flags } : {}),
        };
      }),
    };
  });
}

// ---------------------------------------------------------------- cgroup v2 (Documentation/admin-guide/cgroup-v2.rst)

const numberOrMax = (raw) => (raw === null || raw === undefined ? null : raw.trim() === 'max' ? 'max' : Number(raw.trim()));
const words = (raw) => (raw === null || raw === undefined ? null : raw.trim().split(/\s+/).filter(Boolean));

function parseCgroup(c) {
  const f = (name) => c.files[name] ?? null;
  return {
    path: c.path,
    procs: words(f('cgroup.procs'))?.map(Number) ?? null,
    threads: words(f('cgroup.threads'))?.map(Number) ?? null,
    controllers: words(f('cgroup.controllers')),
    subtree_control: words(f('cgroup.subtree_control')),
    type: f('cgroup.type')?.trim() ?? null,
    memory_current: numberOrMax(f('memory.current')),
    memory_max: numberOrMax(f('memory.max')),
    memory_peak: numberOrMax(f('memory.peak')),
    memory_stat: f('memory.stat') === null ? null : parseKeyValueLines(f('memory.stat')),
    cpu_stat: f('cpu.stat') === null ? null : parseKeyValueLines(f('cpu.stat')),
    cpu_weight: numberOrMax(f('cpu.weight')),
    cpu_max: f('cpu.max')?.trim() ?? null,
    pids_current: numberOrMax(f('pids.current')),
    pids_max: numberOrMax(f('pids.max')),
  };
}

// ---------------------------------------------------------------- sysctls

const SYSCTLS = ['kernel.hostname', 'kernel.domainname', 'kernel.osrelease', 'kernel.tainted', 'kernel.pid_max',
  'kernel.hung_task_timeout_secs', 'kernel.hung_task_warnings', 'kernel.hung_task_check_interval_secs', 'kernel.hung_task_panic',
  'kernel.panic', 'kernel.panic_on_oops', 'kernel.sysrq', 'kernel.printk',
  'vm.overcommit_memory', 'vm.swappiness', 'vm.min_free_kbytes', 'vm.watermark_scale_factor', 'vm.stat_interval', 'vm.compaction_proactiveness'];

/** {"kernel.hostname": "nf-sample", …}: the files' text without the trailing newline (null if unreadable). */
function parseSysctls(files) {
  return Object.fromEntries(SYSCTLS.map((name) => {
    const raw = files[`/proc/sys/${name.replace(/\./g, '/')}`];
    return [name, raw === null || raw === undefined ? null : raw.trim()];
  }));
}

// ---------------------------------------------------------------- scenarios (images/scenarios.mjs)

/** "INFO: task COMM:PID blocked for more than N seconds." — khungtaskd's report (kernel/hung_task.c). */
function hungTaskReports(dmesg) {
  const out = [];
  for (const r of dmesg) {
    const m = /^INFO: task (.+):(\d+) blocked for more than (\d+) seconds\.$/.exec(r.text);
    if (m) out.push({ comm: m[1], pid: Number(m[2]), seconds: Number(m[3]), seq: r.seq, ts_usec: r.ts_usec });
  }
  return out;
}

/** The guest side of a scenario: what init.sh and guest/hang.c wrote to /run/nf-scenario, joined with each
    task's state, stack and wchan at print time. The host adds `panic` (images/scenarios.mjs). */
function parseScenario(files, processes, dmesg, clocks, sysctl) {
  const json = (file) => (files?.[file] ? JSON.parse(files[file]) : null);
  const taskOf = (pid, tid) => processes.find((q) => q.pid === pid)?.threads.find((t) => t.tid === tid) ?? null;
  const withTask = (entry, since) => {
    const t = taskOf(entry.pid, entry.tid ?? entry.pid);
    return {
      ...entry,
      state: t?.state ?? null, wchan: t?.wchan ?? null, stack: t?.stack ?? null,
      // from the helper's own timestamp just before the blocking call (a lower bound for the shell's writers)
      blocked_for_s_at_print: since === null || since === undefined ? null : (clocks.boottime_ns - since) / 1e9,
      // when the task last ran, in ms of the scheduler's clock (/proc/…/sched se.exec_start)
      sched_exec_start_ms: t?.sched?.['se.exec_start'] ?? null,
    };
  };
  const scenario = { name: files?.name?.trim() ?? null, hung: null, panic: null, hung_task_reports: hungTaskReports(dmesg) };
  const hung = json('hung.json');
  const locks = json('locks.json');
  if (hung) {
    scenario.hung = {
      frozen_path: hung.frozen_path,
      frozen_at_boottime_ns: hung.frozen_at_boottime_ns,
      timeout_secs: hung.timeout_secs,
      hung_task_timeout_secs_sysctl: sysctl['kernel.hung_task_timeout_secs'] === null ? null : Number(sysctl['kernel.hung_task_timeout_secs']),
      expected_reports: hung.expected_reports,
      writers: hung.writers.map((w) => withTask(w, w.not_before_boottime_ns)),
      locks: locks && {
        locker_pid: locks.locker_pid, mapped_file: locks.mapped_file, pipe_ino: locks.pipe_ino, all_in_d: locks.all_in_d,
        tasks: locks.tasks.map((t) => withTask(t, t.blocked_at_boottime_ns)),
      },
    };
  }
  return scenario;
}

/** The trailer's files, parsed like their print-time twins. */
function parseAtEnd(raw) {
  if (!raw) return null;
  const file = (name) => raw.files[name] ?? null;
  return {
    clocks: raw.clocks,
    uptime: file('/proc/uptime') === null ? null : parseUptime(file('/proc/uptime')),
    loadavg: file('/proc/loadavg') === null ? null : parseLoadavg(file('/proc/loadavg')),
    meminfo: parseMeminfo(file('/proc/meminfo')),
    buddyinfo: parseBuddyinfo(file('/proc/buddyinfo')),
    vmstat: parseKeyValueLines(file('/proc/vmstat')),
    net_dev: parseNetDev(file('/proc/net/dev')),
    // "/sys/fs/cgroup/nf/web/memory.current" → {"/nf/web": {memory_current, cpu_stat}}
    cgroups: (() => {
      const out = {};
      for (const [name, text] of Object.entries(raw.files)) {
        const m = /^\/sys\/fs\/cgroup(.*)\/(memory\.current|cpu\.stat)$/.exec(name);
        if (!m) continue;
        const entry = (out[m[1] || '/'] ??= { memory_current: null, cpu_stat: null });
        if (m[2] === 'memory.current') entry.memory_current = numberOrMax(text);
        else entry.cpu_stat = text === null ? null : parseKeyValueLines(text);
      }
      return out;
    })(),
  };
}

/** truth.c's document plus the host's timestamps → truth.json. */
export function parseTruth(text, hostTimes = {}) {
  const t = extractTruthJson(text);
  const files = t.files;
  const file = (name) => files[name] ?? null;
  const processes = t.processes.map(parseProcess).filter(Boolean).sort((a, b) => a.pid - b.pid);
  const vmcoreinfo = file('/sys/kernel/vmcoreinfo')?.trim().split(/\s+/);
  const dmesg = parseKmsg(t.kmsg ?? []);
  const sysctl = parseSysctls(files);
  const ifInet6 = parseIfInet6(file('/proc/net/if_inet6'));
  return {
    format: 'nearfield-truth/1',
    note: 'Strings are the guest\'s bytes read as Latin-1. Ground truth as printed inside the guest at print time; see after_print for what moves before the pause, and at_end for the fast-moving files re-read right before the END marker.',
    printer_pid: t.printer_pid,
    hostname: file('/proc/sys/kernel/hostname')?.trim(),
    uname: t.uname,
    kernel: {
      osrelease: file('/proc/sys/kernel/osrelease')?.trim(),
      ostype: file('/proc/sys/kernel/ostype')?.trim(),
      version: file('/proc/sys/kernel/version')?.trim(),
      proc_version: file('/proc/version')?.trim(),
      cmdline: file('/proc/cmdline')?.trim(),
      boot_id: file('/proc/sys/kernel/random/boot_id')?.trim(),
      pid_max: Number(file('/proc/sys/kernel/pid_max')),
      tainted: file('/proc/sys/kernel/tainted') === null ? null : Number(file('/proc/sys/kernel/tainted')),
      cpus_online: file('/sys/devices/system/cpu/online')?.trim(),
      // /sys/kernel/vmcoreinfo: "%pa %x" — the note's physical address and size
      vmcoreinfo_note: vmcoreinfo ? { paddr: `0x${BigInt(vmcoreinfo[0]).toString(16)}`, size: parseInt(vmcoreinfo[1], 16) } : null,
      symbols: parseKallsyms(t.kallsyms),
    },
    clocks: t.clocks,
    clocks_begin: t.clocks_begin,
    uptime: parseUptime(file('/proc/uptime')),
    loadavg: parseLoadavg(file('/proc/loadavg')),
    meminfo: parseMeminfo(file('/proc/meminfo')),
    buddyinfo: parseBuddyinfo(file('/proc/buddyinfo')),
    vmstat: parseKeyValueLines(file('/proc/vmstat')),
    // The fast-moving files re-read after the body crossed the serial port, just before END: nearest the pause.
    at_end: parseAtEnd(t.at_end_raw),
    statfs: t.statfs,
    modules: parseModules(file('/proc/modules')),
    mounts: parseMounts(file('/proc/mounts')),
    processes,
    dmesg,
    sysctl,
    net: {
      tcp: [...parseInetSockets(file('/proc/net/tcp'), 'inet', 'tcp'), ...parseInetSockets(file('/proc/net/tcp6'), 'inet6', 'tcp')],
      udp: [...parseInetSockets(file('/proc/net/udp'), 'inet', 'udp'), ...parseInetSockets(file('/proc/net/udp6'), 'inet6', 'udp')],
      unix: parseUnixSockets(file('/proc/net/unix')),
      dev: parseNetDev(file('/proc/net/dev')),
    },
    interfaces: parseInterfaces(t.interfaces, t.ifaddrs, ifInet6),
    cgroups: t.cgroups === null || t.cgroups === undefined ? null : t.cgroups.map(parseCgroup),
    scenario: parseScenario(t.scenario_files, processes, dmesg, t.clocks, sysctl),
    after_print: {
      // Guest time from the end of gathering to the body having crossed the UART (before the END line).
      guest_transmit_ms: t.written_boottime_ns === null ? null : (t.written_boottime_ns - t.clocks.boottime_ns) / 1e6,
      ...hostTimes,
      known_changes: [
        `the printer (pid ${t.printer_pid}, comm "truth") was R (running) while printing; at the pause it sleeps in pause(): state S`,
        'the printer\'s and the spinner\'s (nf-spin) utime/stime, and the CPUs\' idle/busy counters, keep growing until the pause',
        'uptime, clocks and jiffies advance by about guest_transmit_ms + host_pause_delay_ms (plus the END line and host polling)',
        'loadavg is recomputed every 5 s; it may have moved once if that boundary fell between print and pause',
        'meminfo/buddyinfo/vmstat move while the body crosses the serial port (seconds); at_end re-reads them (and loadavg, uptime, clocks) after transmission, right before the END marker, into static buffers, so compare the paused state with at_end',
        'at_end.clocks/uptime still trail the pause by the trailer and END line transmission plus host_pause_delay_ms',
      ],
    },
    raw: { files, kallsyms: t.kallsyms, kmsg: t.kmsg, at_end: t.at_end_raw, interfaces: t.interfaces ?? null, ifaddrs: t.ifaddrs ?? null, cgroups: t.cgroups ?? null, scenario_files: t.scenario_files ?? null },
  };
}
