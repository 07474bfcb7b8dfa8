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

function parseProcess(p) {
  if (p.stat === null || p.status === null) return null; // exited between readdir and read
  const stat = parseStat(p.stat);
  const status = parseStatus(p.status);
  const [uid, euid, suid, fsuid] = (status.Uid ?? '').split(/\s+/).map(Number);
  const [gid, egid, sgid, fsgid] = (status.Gid ?? '').split(/\s+/).map(Number);
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
    cmdline: p.cmdline ?? [],
    threads: (p.tasks ?? []).filter((t) => t.stat !== null).map((t) => {
      const ts = parseStat(t.stat);
      return { tid: t.tid, comm: ts.comm, state: ts.state, utime: ts.utime, stime: ts.stime, starttime: ts.starttime, nice: ts.nice, priority: ts.priority, processor: ts.processor };
    }),
    raw: { stat: p.stat, status: p.status },
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
  };
}

/** truth.c's document plus the host's timestamps → truth.json. */
export function parseTruth(text, hostTimes = {}) {
  const t = extractTruthJson(text);
  const files = t.files;
  const file = (name) => files[name] ?? null;
  const processes = t.processes.map(parseProcess).filter(Boolean).sort((a, b) => a.pid - b.pid);
  const vmcoreinfo = file('/sys/kernel/vmcoreinfo')?.trim().split(/\s+/);
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
    dmesg: parseKmsg(t.kmsg ?? []),
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
    raw: { files, kallsyms: t.kallsyms, kmsg: t.kmsg, at_end: t.at_end_raw },
  };
}
