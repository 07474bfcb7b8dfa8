// What the guest had open, from outside, against each guest's own truth: lsof (every fd of every process), net
// (TCP/UDP/unix sockets with their owners, interfaces and their counters, sockstat), pmap (/proc/PID/maps line by
// line), env (environ byte for byte), cgroups, and the kernel's command line, taint and sysctls; then the report's
// open-file, socket and network metrics. Runs on the sample once it carries this truth, and on every built guest;
// a guest CI requires (NEARFIELD_REQUIRED_GUESTS) fails when it is absent or its truth lacks these keys.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { builtGuests } from './built-guests.js';
import { json, run, sample, type Truth } from './walkers-helpers.js';
import { procMapsLine } from '../src/cli/commands/pmap.js';

const s = await sample();
const candidates = [{ name: 'sample', dir: s.dir, ram: s.ram, core: s.core, truth: s.truth, present: true, required: false }, ...builtGuests()];

/** The truth keys these tests compare with (images/README.md "truth.json"). */
function hasInventoryTruth(t: Truth): boolean {
  return Boolean(t?.net?.tcp && t?.net?.dev && t?.interfaces && t?.cgroups && t?.sysctl && t?.at_end?.net_dev && t?.processes?.some((p: Truth) => Array.isArray(p.fds) && Array.isArray(p.environ)));
}

/** /proc/net/dev's field names (truth) → the record's. */
const camel = (k: string) => k.replace(/_(\w)/g, (_, c: string) => c.toUpperCase());

for (const g of candidates) {
  const truth: Truth = g.present ? JSON.parse(readFileSync(g.truth, 'utf8')) : null;
  const ready = hasInventoryTruth(truth);
  describe.skipIf(!ready && !g.required)(`inventory on ${g.name}`, () => {
    it('has a truth with fds, sockets, interfaces, maps, environ, cgroups and sysctls', () => {
      expect(g.present, `${g.dir}: the guest did not build`).toBe(true);
      expect(ready, `${g.truth} lacks the inventory keys (built by an older images/build-guest.mjs?)`).toBe(true);
    });
    if (!ready) return;
    const printer = truth.printer_pid as number;
    // The printer lists its own fds while it had /proc open and before it opened ttyS1 (images/README.md).
    const processes = (truth.processes as Truth[]).filter((p) => p.pid !== printer);

    it.each([['ram.raw', g.ram], ['core.elf', g.core]])('lsof on %s: every fd of every process, as /proc/PID/fd and fdinfo show it', (_, ram) => {
      const ours = json('lsof', ram);
      expect(ours.warnings).toEqual([]);
      const byPid = new Map<number, Truth[]>();
      for (const f of ours.files) byPid.set(f.pid, [...(byPid.get(f.pid) ?? []), f]);
      let fds = 0;
      for (const p of processes.filter((p) => Array.isArray(p.fds))) {
        const got = (byPid.get(p.pid) ?? []).map((f) => ({ fd: f.fd, target: f.target, pos: Number(f.position), flags: f.flags, mnt_id: f.mntId, ino: f.inode }));
        const want = p.fds.map((f: Truth) => ({ fd: f.fd, target: f.target, pos: f.pos, flags: f.flags, mnt_id: f.mnt_id, ino: f.ino }));
        expect(got, `pid ${p.pid} ${p.comm}`).toEqual(want);
        fds += want.length;
      }
      expect(fds).toBeGreaterThan(30);
      // the workload's kinds are all there: a deleted file, a pipe, sockets, an eventfd and a memfd
      const targets = ours.files.map((f: Truth) => f.target as string);
      for (const kind of [/ \(deleted\)$/, /^pipe:\[\d+\]$/, /^socket:\[\d+\]$/, /^anon_inode:\[eventfd\]$/, /^\/memfd:/]) expect(targets.some((t: string) => kind.test(t)), String(kind)).toBe(true);
      const tcp = ours.files.find((f: Truth) => f.socket?.protocol === 'TCP' && f.socket.state === 'ESTABLISHED');
      expect(tcp.fileType).toBe('SOCK');
      expect(tcp.socket.remote).toMatch(/:\d+$/);
    });

    it('net: every TCP and UDP socket of /proc/net/{tcp,tcp6,udp,udp6} (state, endpoints, queues, uid, inode) with its owners', () => {
      const ours = json('net', g.ram);
      expect(ours.warnings).toEqual([]);
      const pick = (s: Truth) => ({
        protocol: s.protocol, family: s.family, state: s.state, local: `${s.local_address ?? s.localAddress}:${s.local_port ?? s.localPort}`,
        remote: `${s.remote_address ?? s.remoteAddress}:${s.remote_port ?? s.remotePort}`, tx: s.tx_queue ?? s.txQueue, rx: s.rx_queue ?? s.rxQueue, uid: s.uid, inode: s.inode,
      });
      const key = (a: Truth) => `${a.protocol} ${a.inode} ${a.local} ${a.remote}`;
      const want = [...truth.net.tcp, ...truth.net.udp].map(pick).sort((a, b) => key(a).localeCompare(key(b)));
      const got = ours.sockets.map(pick).sort((a: Truth, b: Truth) => key(a).localeCompare(key(b)));
      expect(got).toEqual(want);
      expect(want.length).toBeGreaterThan(8);
      // owners: every process holding "socket:[ino]" in its fd table, and no other
      const owners = new Map<number, string[]>();
      for (const p of processes) for (const f of p.fds ?? []) {
        const m = /^socket:\[(\d+)\]$/.exec(f.target);
        if (m) owners.set(Number(m[1]), [...(owners.get(Number(m[1])) ?? []), `${p.pid}/${f.fd}`]);
      }
      for (const sock of [...ours.sockets, ...ours.unix]) {
        const got = sock.owners.filter((o: Truth) => o.pid !== printer).map((o: Truth) => `${o.pid}/${o.fd}`).sort();
        expect(got, `socket inode ${sock.inode}`).toEqual((owners.get(sock.inode) ?? []).sort());
      }
      expect(ours.sockets.filter((x: Truth) => x.owners.length > 0).length).toBeGreaterThan(8);
    });

    it('net: unix sockets as /proc/net/unix lists them, paths and abstract names included', () => {
      const ours = json('net', g.ram);
      const pick = (u: Truth) => ({ refcount: u.refcount, flags: u.flags, type: u.type ?? u.socketType, state: u.state, st: u.state_code ?? u.stateCode, inode: u.inode, path: u.path });
      const key = (a: Truth) => `${a.inode} ${a.path}`;
      expect(ours.unix.map(pick).sort((a: Truth, b: Truth) => key(a).localeCompare(key(b)))).toEqual(truth.net.unix.map(pick).sort((a: Truth, b: Truth) => key(a).localeCompare(key(b))));
      expect(truth.net.unix.some((u: Truth) => u.path?.startsWith('@'))).toBe(true);
    });

    it('net: interfaces (index, MAC, MTU, flags, state, addresses) and their counters at the pause', () => {
      const ours = json('net', g.ram);
      const byName = new Map<string, Truth>(ours.interfaces.map((i: Truth) => [i.name, i]));
      expect([...byName.keys()].sort()).toEqual(truth.interfaces.map((i: Truth) => i.name).sort());
      for (const t of truth.interfaces) {
        const i = byName.get(t.name);
        expect({ ifindex: i.ifindex, mac: i.mac, broadcast: i.broadcast, mtu: i.mtu, flags: i.flags, operstate: i.operstate, type: i.linkType, txq: i.txQueueLen, carrier: i.carrier ? 1 : 0 }, t.name)
          .toEqual({ ifindex: t.ifindex, mac: t.mac, broadcast: t.broadcast, mtu: t.mtu, flags: t.flags, operstate: t.operstate, type: t.type, txq: t.tx_queue_len, carrier: t.carrier });
        const addr = (a: Truth) => `${a.family} ${a.address}/${a.prefixlen} ${a.scope ?? ''} ${a.ifa_flags ?? a.ifaFlags ?? ''}`;
        expect(i.addresses.map(addr).sort(), t.name).toEqual(t.addresses.map(addr).sort());
      }
      // The printer sends over the serial port only: the counters it re-read after sending are the pause's.
      for (const [name, want] of Object.entries(truth.at_end.net_dev as Record<string, Record<string, number>>)) {
        const stats = byName.get(name).stats;
        expect(stats, `${name}: ${byName.get(name).statsSource}`).not.toBeNull();
        const got = Object.fromEntries(Object.keys(want).map((k) => [k, Number(stats[camel(k)])]));
        expect(got, `${name} (${byName.get(name).statsSource})`).toEqual(want);
      }
      expect(Number(byName.get('lo').stats.rxPackets)).toBeGreaterThan(0);
    });

    it('net: sockstat as /proc/net/sockstat and sockstat6 print it', () => {
      const ss = json('net', g.ram).sockstat;
      const text = `${truth.raw.files['/proc/net/sockstat']}${truth.raw.files['/proc/net/sockstat6']}`;
      const field = (line: string, name: string) => Number(new RegExp(`^${line}:.*\\b${name} (-?\\d+)`, 'm').exec(text)![1]);
      expect(ss).toEqual({
        socketsUsed: field('sockets', 'used'), tcpInuse: field('TCP', 'inuse'), tcpOrphan: field('TCP', 'orphan'), tcpTw: field('TCP', 'tw'), tcpAlloc: field('TCP', 'alloc'),
        tcpMem: field('TCP', 'mem'), udpInuse: field('UDP', 'inuse'), udpMem: field('UDP', 'mem'), rawInuse: field('RAW', 'inuse'),
        tcp6Inuse: field('TCP6', 'inuse'), udp6Inuse: field('UDP6', 'inuse'), raw6Inuse: field('RAW6', 'inuse'),
      });
    });

    it('pmap --proc: /proc/PID/maps of every process, line by line', () => {
      const ours = json('pmap', g.ram, ['--all']);
      expect(ours.warnings).toEqual([]);
      const byPid = new Map<number, Truth>(ours.processes.map((p: Truth) => [p.pid, p]));
      let lines = 0;
      for (const p of processes.filter((p) => typeof p.raw?.maps === 'string' && p.maps !== null)) {
        const want = (p.raw.maps as string).split('\n').filter(Boolean);
        const got = (byPid.get(p.pid)?.vmas ?? []).map(procMapsLine);
        expect(got, `pid ${p.pid} ${p.comm}`).toEqual(want);
        lines += want.length;
      }
      expect(lines).toBeGreaterThan(100);
      // Resident bytes per VMA: present pages, as smaps counts them. Since 6.12 /proc/PID/status sums the
      // per-CPU RSS counters (get_mm_counter_sum), so its VmRSS is exact there and equals the sum over the VMAs;
      // 6.1's per-task cached counters lag (a process showed VmRSS 4 kB with 748 kB mapped).
      const [major, minor] = (truth.uname.release as string).split('.').map(Number) as [number, number];
      if (major > 6 || (major === 6 && minor >= 12)) {
        for (const p of processes.filter((p) => p.maps?.length && p.vm_rss_kb !== null)) {
          const vmas = byPid.get(p.pid).vmas as Truth[];
          expect(vmas.every((v) => v.rssBytes !== null && v.rssBytes <= v.sizeBytes), `pid ${p.pid}`).toBe(true);
          expect(vmas.reduce((sum, v) => sum + v.rssBytes, 0) / 1024, `pid ${p.pid} ${p.comm}: VmRSS`).toBe(p.vm_rss_kb);
        }
      }
      // the CLI prints the same lines for one process
      const one = processes.find((p) => p.comm === 'nf-files');
      expect(run(['pmap', String(one.pid), '--proc', '--ram', g.ram]).stdout).toBe(one.raw.maps);
    });

    it('env: /proc/PID/environ of every process, byte for byte', () => {
      const ours = json('env', g.ram, ['--all']);
      expect(ours.warnings).toEqual([]);
      const byPid = new Map<number, Truth>(ours.processes.map((p: Truth) => [p.pid, p]));
      let checked = 0;
      for (const p of (truth.processes as Truth[]).filter((p) => Array.isArray(p.environ))) {
        expect(byPid.get(p.pid)?.environ ?? [], `pid ${p.pid} ${p.comm}`).toEqual(p.environ);
        checked += p.environ.length;
      }
      expect(checked).toBeGreaterThan(20);
      const quoted = processes.find((p) => p.environ?.some((e: string) => e.startsWith('NF_QUOTED=')));
      expect(run(['env', String(quoted.pid), '--ram', g.ram]).stdout).toBe(quoted.environ.map((e: string) => `${e}\n`).join(''));
    });

    it('cgroups: the tree, its processes, controllers, memory and pids; cpu usage at the pause', () => {
      const ours = json('cgroups', g.ram);
      expect(ours.warnings).toEqual([]);
      const byPath = new Map<string, Truth>(ours.cgroups.map((c: Truth) => [c.path, c]));
      expect([...byPath.keys()].sort()).toEqual(truth.cgroups.map((c: Truth) => c.path).sort());
      const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
      for (const t of truth.cgroups) {
        const c = byPath.get(t.path);
        expect({ procs: c.procs, threads: c.threads, controllers: c.controllers, subtree: c.subtreeControl, pidsCurrent: c.pidsCurrent, pidsMax: c.pidsMax, memMax: c.memoryMax }, t.path).toEqual({
          procs: [...t.procs].sort((a, b) => a - b), threads: [...t.threads].sort((a, b) => a - b), controllers: t.controllers, subtree: t.subtree_control,
          pidsCurrent: t.pids_current, pidsMax: str(t.pids_max), memMax: str(t.memory_max),
        });
        const end = truth.at_end.cgroups[t.path];
        expect(c.memoryCurrentBytes, t.path).toBe(end.memory_current);
        if (t.path !== '/') {
          expect(c.memoryPeakBytes, t.path).toBe(t.memory_peak);
          // the /nf cgroups are idle: cpu.stat as the printer re-read it just before the pause
          expect([c.cpu.usageUsec, c.cpu.userUsec, c.cpu.systemUsec], t.path).toEqual([end.cpu_stat.usage_usec, end.cpu_stat.user_usec, end.cpu_stat.system_usec]);
        } else {
          // the root counts system-wide CPU time, which kept running (nf-spin) until the pause
          expect(c.cpu.usageUsec).toBeGreaterThanOrEqual(end.cpu_stat.usage_usec);
          expect(c.cpu.usageUsec - end.cpu_stat.usage_usec).toBeLessThan(30e6);
        }
      }
      expect(ours.cgroups.some((c: Truth) => c.path !== '/' && c.procs.length > 0)).toBe(true);
    });

    it('kernel: command line, taint mask and sysctls', () => {
      const k = json('kernel', g.ram);
      expect(k.commandLine).toBe(truth.kernel.cmdline);
      expect(k.tainted).toBe(Number(truth.kernel.tainted));
      const ours = Object.fromEntries(k.sysctls.map((x: Truth) => [x.name, x.value]));
      const skipped = ['vm.stat_interval']; // in jiffies; the kernel's HZ is not known from RAM
      for (const [name, value] of Object.entries(truth.sysctl as Record<string, string>)) {
        if (skipped.includes(name)) continue;
        // panic() calls console_verbose() after the truth was read: console_loglevel becomes 15 (motormouth)
        const want = name === 'kernel.printk' && truth.scenario?.name === 'panic' ? value.replace(/^\d+/, '15') : value;
        expect(ours[name], name).toBe(want);
      }
    });

    it('report: open files and sockets, node_network_* per interface, node_sockstat_*, listening ports in the table', () => {
      const args = g.name === 'sample' ? ['--ram', g.ram] : [g.dir];
      const prom = run(['report', ...args, '--prometheus']).stdout;
      const metric = (name: string, labels = '') => Number(new RegExp(`^${name}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, 'm').exec(prom)?.[1]);
      for (const [dev, want] of Object.entries(truth.at_end.net_dev as Record<string, Record<string, number>>)) {
        expect(metric('node_network_receive_bytes_total', `device="${dev}"`), dev).toBe(want.rx_bytes);
        expect(metric('node_network_transmit_packets_total', `device="${dev}"`), dev).toBe(want.tx_packets);
      }
      const sockstat = truth.raw.files['/proc/net/sockstat'] as string;
      expect(metric('node_sockstat_TCP_inuse')).toBe(Number(/TCP: inuse (\d+)/.exec(sockstat)![1]));
      expect(metric('node_sockstat_sockets_used')).toBe(Number(/sockets: used (\d+)/.exec(sockstat)![1]));
      const fds = processes.reduce((n, p) => n + (p.fds?.length ?? 0), 0);
      expect(metric('nearfield_open_fds')).toBeGreaterThanOrEqual(fds);
      const socketFds = processes.reduce((n, p) => n + (p.fds ?? []).filter((f: Truth) => f.target.startsWith('socket:')).length, 0);
      expect(metric('nearfield_open_sockets')).toBe(socketFds);
      const table = run(['report', ...args]).stdout;
      const listen = truth.net.tcp.find((x: Truth) => x.state === 'LISTEN' && x.family === 'inet');
      expect(table).toMatch(new RegExp(`tcp\\s+${listen.local_address.replace(/\./g, '\\.')}:${listen.local_port}\\s+\\S+\\[\\d+\\]`));
    });
  });
}

describe('inventory CLI', () => {
  it('pmap and env take a PID or --all, with the target after it; usage errors exit 2, an unknown pid 1', () => {
    const all = run(['pmap', '--all', s.dir, '--json']);
    expect(all.status, all.stderr).toBe(0);
    const init = JSON.parse(all.stdout).processes.find((p: Truth) => p.pid === 1);
    expect(init.vmas.length).toBeGreaterThan(3);
    const one = run(['pmap', '1', s.dir, '--proc']);
    expect(one.stdout.split('\n')[0]).toBe(procMapsLine(init.vmas[0]));
    expect(run(['env', '1', s.dir]).stdout).toMatch(/^\w+=/m);
    for (const args of [['pmap'], ['env'], ['pmap', '1', '--all', s.dir], ['pmap', 'abc', '--ram', s.ram], ['lsof', '--process', 'x', '--ram', s.ram]]) {
      const r = run(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^nearfield: /);
    }
    const missing = run(['lsof', '-p', '4194305', '--ram', s.ram]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no process with pid 4194305');
  });

  it('lsof -p and net --process keep that process only', () => {
    const lsof = json('lsof', s.ram, ['-p', '1']);
    expect(lsof.files.length).toBeGreaterThan(0);
    expect(new Set(lsof.files.map((f: Truth) => f.pid))).toEqual(new Set([1]));
    const net = json('net', s.ram, ['--process', '1']);
    for (const sock of [...net.sockets, ...net.unix]) expect(sock.owners.map((o: Truth) => o.pid)).toContain(1);
  });
});
