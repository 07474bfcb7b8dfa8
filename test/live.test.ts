// Reading running QEMU guests live (--pid, --qmp): two guests started here WITHOUT memory-backend-file (QEMU's own
// anonymous RAM) — pc 256 MiB churning processes, memory and the kernel log after its truth, and q35 3 GiB whose RAM
// above 2 GiB sits at 4 GiB — compared with the truth each printed; the churning guest read 500 times (0 crashes,
// 0 hangs, every result consistent or flagged); --pause; the host tier; no privilege; the exporter on a live VM.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, root, run, type Truth } from './walkers-helpers.js';
import { sleep, waitFor } from './services.js';

// The built code (dist/): only from there does the gateway find the native addon.
const dist = (file: string) => import(join(root, 'dist', 'src', file));
const { Guest } = (await dist('guest.js')) as typeof import('../src/guest.js');
const { NearfieldError } = (await dist('errors.js')) as typeof import('../src/errors.js');
const { resolveLiveRam } = (await dist('live/qemu.js')) as typeof import('../src/live/qemu.js');

interface Running { pid: number; qmp: string; machine: string; mem_bytes: number }
interface Booted { guest?: Running; truth?: Truth; log: string }

let work: string;
const guests: Record<'pc' | 'q35', Booted> = { pc: { log: '' }, q35: { log: '' } };

/** One QMP command on a fresh connection. */
async function qmp(socket: string, command: string): Promise<Record<string, unknown>> {
  const { QmpClient } = (await dist('snapshot/qmp.js')) as typeof import('../src/snapshot/qmp.js');
  const c = await QmpClient.connect(socket, 10_000);
  try {
    return (await c.execute(command)) as Record<string, unknown>;
  } finally {
    c.close();
  }
}

async function boot(name: 'pc' | 'q35', args: string[]): Promise<void> {
  const out = join(work, name);
  const b = guests[name];
  const code = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [join(root, 'images', 'build-guest.mjs'), '--out', out, '--keep-running', '--anon-ram', '--timeout', '500', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.on('data', (d) => (b.log += d));
    p.stderr.on('data', (d) => (b.log += d));
    p.on('exit', resolve);
  });
  if (code === 0 && existsSync(join(out, 'running.json'))) {
    b.guest = JSON.parse(readFileSync(join(out, 'running.json'), 'utf8')) as Running;
    b.truth = JSON.parse(readFileSync(join(out, 'truth.json'), 'utf8'));
  }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nf-live-read-'));
  await Promise.all([
    boot('pc', ['--machine', 'pc', '--mem', '256M', '--scenario', 'churn']),
    boot('q35', ['--machine', 'q35', '--mem', '3G', '--no5lvl']),
  ]);
}, 900_000);

afterAll(async () => {
  for (const b of Object.values(guests)) {
    if (!b.guest) continue;
    await qmp(b.guest.qmp, 'quit').catch(() => {});
    try { process.kill(b.guest.pid, 'SIGKILL'); } catch { /* gone */ }
  }
  rmSync(work, { recursive: true, force: true });
});

function need(name: 'pc' | 'q35'): { g: Running; truth: Truth } {
  const b = guests[name];
  expect(b.guest, `build-guest ${name} --anon-ram --keep-running failed:\n${b.log.slice(-3000)}`).toBeDefined();
  return { g: b.guest!, truth: b.truth };
}

/** The truth's user processes: they run on for the guest's whole life (kernel threads may come and go). */
const userProcesses = (truth: Truth) => (truth.processes as Truth[]).filter((p) => !p.kernel_thread && p.state !== 'Z');

function jsonOf(args: string[]): { out: Truth; stderr: string; status: number | null } {
  const r = run(args);
  expect([0, 3], r.stderr).toContain(r.status);
  return { out: JSON.parse(r.stdout), stderr: r.stderr, status: r.status };
}

describe.each(['pc', 'q35'] as const)('a running %s guest without memory-backend-file', (name) => {
  it('is read through QEMU\'s own map (query-memdev, info mtree -f, gpa2hva), the whole of its RAM', async () => {
    const { g } = need(name);
    const live = await resolveLiveRam({ qmp: g.qmp });
    expect(live.pid).toBe(g.pid);
    const segs = live.map!.map((s) => ({ gpa: BigInt(s.gpa), len: BigInt(s.len) }));
    // all of -m but the legacy VGA window 0xa0000–0xbffff, which the vCPUs see as I/O (vga-lowmem), not RAM
    expect(segs.reduce((n, s) => n + s.len, 0n)).toBe(BigInt(g.mem_bytes) - 0x20000n);
    expect(segs.some((s) => s.gpa <= 0xa0000n && 0xa0000n < s.gpa + s.len)).toBe(false);
    if (name === 'q35') {
      // q35 keeps 2 GiB below the PCI hole when RAM > 2.75 GiB: the other 1 GiB is at 4 GiB
      expect(segs.some((s) => s.gpa === 0x1_0000_0000n && s.len === 1n << 30n), JSON.stringify(live.map)).toBe(true);
    }
  });

  it('lists every process the guest printed, with its cmdline, and says how the read held together', () => {
    const { g, truth } = need(name);
    const { out, stderr } = jsonOf(['ps', '--qmp', g.qmp, '--json', '--no-cache']);
    const ours = new Map((out.tasks as Truth[]).map((t) => [t.pid, t]));
    for (const p of userProcesses(truth)) {
      const t = ours.get(p.pid);
      expect(t?.comm, `pid ${p.pid} ${p.comm}`).toBe(p.comm);
      if (p.cmdline) expect(t.cmdline, `cmdline of ${p.comm}`).toEqual(p.cmdline);
    }
    expect(stderr).toMatch(/nearfield: consistency: live, \d+ retr(y|ies)|torn: /);
  });

  it('reads the kernel, uptime and memory the guest reported', () => {
    const { g, truth } = need(name);
    const k = jsonOf(['kernel', '--qmp', g.qmp, '--json']).out;
    expect(k.release).toBe(truth.uname.release);
    expect(k.layout ?? JSON.stringify(k)).toMatch(/qmp: info mtree -f \+ gpa2hva/);
    const u = jsonOf(['uptime', '--qmp', g.qmp, '--json']).out;
    expect(u.nodename).toBe(truth.hostname);
    expect(u.uptimeSeconds).toBeGreaterThan(truth.clocks.boottime_ns / 1e9);
    const m = jsonOf(['meminfo', '--qmp', g.qmp, '--json']).out;
    const byName = Object.fromEntries((m.fields as Truth[]).map((f) => [f.name, f.value]));
    expect(byName.MemTotal).toBe(truth.meminfo.MemTotal);
    expect(Object.keys(byName)).toEqual(Object.keys(truth.meminfo));
  });

  it('without a monitor (--pid), guesses the map from /proc/PID/maps and QEMU\'s command line, says so, and finds the same kernel', () => {
    const { g } = need(name);
    const viaQmp = jsonOf(['kernel', '--qmp', g.qmp, '--json']).out;
    const r = jsonOf(['kernel', '--pid', String(g.pid), '--json']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/guessed from \/proc\/\d+\/maps/);
    for (const f of ['release', 'buildId', 'kaslrOffset', 'physBase', 'dtb', 'pagingLevels']) expect(r.out[f], f).toEqual(viaQmp[f]);
  });
});

describe('the churning guest', () => {
  it('read 500 times while it forks, allocates and logs: no crash, no hang, every result consistent or flagged', async () => {
    const { g, truth } = need('pc');
    const live = await resolveLiveRam({ qmp: g.qmp });
    const guest = await Guest.open({ ram: 'live', pid: live.pid, processMap: live.map, processMapSource: live.mapSource, cache: false });
    const stable = userProcesses(truth);
    const fields = Object.keys(truth.meminfo);
    const counts = { consistent: 0, flagged: 0, errors: 0, crashes: 0, wrong: 0, retries: 0, tornReads: 0 };
    const problems: string[] = [];
    let slowest = 0;
    try {
      for (let i = 0; i < 500; i++) {
        const t0 = performance.now();
        try {
          const tasks = guest.tasks();
          const mem = guest.meminfo();
          const log = i % 10 === 0 ? guest.dmesg() : undefined;
          const c = guest.takeConsistency();
          counts.retries += c.retries;
          counts.tornReads += c.tornReads;
          if (c.torn.length > 0) {
            counts.flagged++;
            continue;
          }
          // A result not flagged must hold together: unique pids, parents listed, the workload there, memory sane.
          const pids = new Set(tasks.tasks.map((t) => t.pid));
          const bad: string[] = [];
          if (pids.size !== tasks.tasks.length) bad.push('a pid listed twice');
          for (const t of tasks.tasks) if (t.ppid !== 0 && !pids.has(t.ppid)) bad.push(`pid ${t.pid} has unlisted parent ${t.ppid}`);
          for (const p of stable) if (!pids.has(p.pid)) bad.push(`workload pid ${p.pid} ${p.comm} missing`);
          const m = Object.fromEntries(mem.fields.map((f) => [f.name, f.value]));
          if (mem.fields.map((f) => f.name).join() !== fields.join()) bad.push('meminfo fields differ');
          if (!(m.MemFree! <= m.MemTotal! && m.MemAvailable! <= m.MemTotal!)) bad.push(`MemFree ${m.MemFree} / MemAvailable ${m.MemAvailable} above MemTotal`);
          if (log) for (let j = 1; j < log.records.length; j++) if (log.records[j]!.seq <= log.records[j - 1]!.seq) { bad.push('log out of order'); break; }
          if (tasks.warnings.length > 0) bad.push(`warnings without a torn flag: ${tasks.warnings[0]}`);
          if (bad.length > 0) {
            counts.wrong++;
            problems.push(`read ${i}: ${bad.slice(0, 3).join('; ')}`);
          } else counts.consistent++;
        } catch (e) {
          if (e instanceof NearfieldError) {
            counts.errors++;
            guest.takeConsistency();
          } else {
            counts.crashes++;
            problems.push(`read ${i}: ${(e as Error).stack}`);
          }
        } finally {
          slowest = Math.max(slowest, performance.now() - t0);
        }
      }
    } finally {
      guest.close();
    }
    console.log(`churn: 500 reads: ${counts.consistent} consistent, ${counts.flagged} flagged torn, ${counts.errors} errors, ${counts.crashes} crashes, ${counts.wrong} wrong; ${counts.retries} retries, ${counts.tornReads} torn reads; slowest ${slowest.toFixed(0)} ms`);
    expect(counts.crashes, problems.join('\n')).toBe(0);
    expect(counts.wrong, problems.join('\n')).toBe(0);
    expect(counts.consistent + counts.flagged + counts.errors).toBe(500);
    expect(slowest, 'a read that takes this long is a hang').toBeLessThan(30_000);
    // the guest really moved: reads needed retries, and most still came out whole
    expect(counts.consistent).toBeGreaterThan(250);
  }, 600_000);

  it('--pause stops the VM for the read only if it was running, and leaves it as it found it', async () => {
    const { g, truth } = need('pc');
    const r = run(['ps', '--qmp', g.qmp, '--pause', '--json']);
    expect([0, 3]).toContain(r.status);
    expect(r.stderr).toMatch(/consistency: paused for the read/);
    expect((await qmp(g.qmp, 'query-status')).status).toBe('running');
    const pids = new Set((JSON.parse(r.stdout).tasks as Truth[]).map((t) => t.pid));
    for (const p of userProcesses(truth)) expect(pids.has(p.pid)).toBe(true);
    await qmp(g.qmp, 'stop');
    try {
      const again = run(['uptime', '--qmp', g.qmp, '--pause']);
      expect(again.status, again.stderr).toBe(0);
      expect((await qmp(g.qmp, 'query-status')).status).toBe('paused');
      // a paused guest reads the same twice
      const a = JSON.parse(run(['uptime', '--qmp', g.qmp, '--json']).stdout);
      const b = JSON.parse(run(['uptime', '--qmp', g.qmp, '--json']).stdout);
      expect(a.boottimeNs).toBe(b.boottimeNs);
    } finally {
      await qmp(g.qmp, 'cont');
    }
  });

  it('without the privilege to read the process, gives one clear line', () => {
    const { g } = need('pc');
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, cli, 'ps', '--pid', String(g.pid)], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/permission denied \(reading another process's memory needs CAP_SYS_PTRACE/);
  });
});

describe('the host tier', () => {
  it('reads the VMM, its vCPU threads, block devices and cgroup as the host sees them', async () => {
    const { g } = need('pc');
    const procStat = () => readFileSync(`/proc/${g.pid}/stat`, 'utf8').slice(readFileSync(`/proc/${g.pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
    const before = procStat();
    const { out: doc } = jsonOf(['host', '--qmp', g.qmp, '--json']);
    const after = procStat();
    expect(doc.schemaVersion).toBe(1);
    const h = doc.host;
    expect(h.pid).toBe(g.pid);
    const cpu = (s: string[]) => (Number(s[11]) + Number(s[12])) / 100;
    expect(h.cpuUserSeconds + h.cpuSystemSeconds).toBeGreaterThanOrEqual(cpu(before) - 0.011);
    expect(h.cpuUserSeconds + h.cpuSystemSeconds).toBeLessThanOrEqual(cpu(after) + 0.011);
    // vCPU threads: QEMU's own answer (query-cpus-fast), threads of the VMM
    const cpus = (await qmp(g.qmp, 'query-cpus-fast')) as unknown as { 'cpu-index': number; 'thread-id': number }[];
    expect(h.vcpus.map((v: Truth) => [v.index, v.threadId])).toEqual(cpus.map((c) => [c['cpu-index'], c['thread-id']]));
    const tasks = new Set(readdirSync(`/proc/${g.pid}/task`).map(Number));
    for (const v of h.vcpus) expect(tasks.has(v.threadId)).toBe(true);
    for (const v of h.vcpus) expect(v.delaySeconds).toBeGreaterThanOrEqual(0);
    const vda = h.block.find((b: Truth) => b.device === 'virtio0');
    expect(vda?.readBytes).toBeGreaterThan(0); // the guest mounted its rootfs
    expect(h.cgroup?.path).toBe(/^0::(.*)$/m.exec(readFileSync(`/proc/${g.pid}/cgroup`, 'utf8'))?.[1]);
    expect(h.interfaces).toEqual([]); // test guests have no network device
  });

  it('puts the host section beside the guest\'s in the report, with the libvirt exporter\'s metric names', () => {
    const { g, truth } = need('pc');
    const r = run(['report', '--qmp', g.qmp, '--prometheus']);
    expect([0, 3], r.stderr).toContain(r.status);
    expect(r.stdout).toMatch(/^libvirt_domain_vcpu_time_seconds_total\{vm="[^"]+",domain="[^"]+",vcpu="1"\} \d/m);
    expect(r.stdout).toMatch(/^libvirt_domain_block_stats_read_bytes_total\{vm="[^"]+",domain="[^"]+",target_device="virtio0"\} [1-9]/m);
    expect(r.stdout).toMatch(/^nearfield_torn_reads_total\{vm="[^"]+"\} \d+$/m);
    expect(r.stdout).toContain(`node_memory_MemTotal_bytes{vm="${g.qmp.split('/').pop()!.replace(/\.sock$/, '')}"} ${truth.meminfo.MemTotal * 1024}`);
    const j = JSON.parse(run(['report', '--qmp', g.qmp, '--json']).stdout)[0];
    expect(j.consistency).toBe('live');
    expect(j.sections.host.tiers.guestMemTotalBytes).toBe(truth.meminfo.MemTotal * 1024);
    expect(j.sections.host.tiers.memoryRatio).toBeGreaterThan(0);
  });
});

describe('the exporter on a live VM', () => {
  it('serves the running guest and its host tier, scrape after scrape', async () => {
    const { g, truth } = need('pc');
    const child = spawn(process.execPath, [cli, 'exporter', '--listen', '127.0.0.1:0', '--vm', `churn=qmp:${g.qmp}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d) => (log += d));
    try {
      let port = 0;
      await waitFor(() => Boolean((port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0))), 30_000, log);
      for (let i = 0; i < 3; i++) {
        const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        expect(text).toContain(`node_memory_MemTotal_bytes{vm="churn"} ${truth.meminfo.MemTotal * 1024}`);
        expect(text).toMatch(/nearfield_collector_success\{vm="churn",collector="processes"\} 1/);
        expect(text).toMatch(/libvirt_domain_vcpu_delay_seconds_total\{vm="churn",domain="churn",vcpu="0"\}/);
      }
      expect(log.match(/vm churn: up/g)?.length).toBe(1);
    } finally {
      child.kill('SIGTERM');
      await sleep(500);
    }
  });
});
