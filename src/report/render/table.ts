// Human report: one block per VM, sections like the tools operators know (uptime, free, ps, df, buddyinfo).

import { renderTable } from '../../cli/output.js';
import type { VmReport } from '../model.js';
import { humanBytes, humanDuration } from '../units.js';
import { freeRecord } from '../../cli/commands/free.js';

export function renderReportTable(reports: VmReport[]): string {
  return reports.map(renderOne).join('\n');
}

function renderOne(r: VmReport): string {
  const out: string[] = [];
  const where = r.target.sample ? 'embedded sample guest' : (r.target.dir ?? r.target.ram ?? r.target.disk ?? '');
  out.push(`== ${r.vm} (${where}) — ${r.consistency === 'paused' ? 'paused snapshot' : r.consistency === 'live' ? 'LIVE copy: values may be torn' : 'consistency unknown'}, read in ${r.durationMs.toFixed(0)} ms`);

  if (r.kernel || r.uptime) {
    const k = r.kernel;
    const u = r.uptime;
    const rows: [string, string][] = [];
    if (u?.hostname) rows.push(['hostname', u.hostname]);
    if (k?.release) rows.push(['kernel', `${k.release}${k.pagingLevels ? `, ${k.pagingLevels}-level paging` : ''}${k.kaslrOffset ? `, KASLR ${k.kaslrOffset}` : ''}`]);
    if (u) {
      rows.push(['uptime', humanDuration(u.uptimeSeconds)]);
      if (u.bootTimeSeconds !== null) rows.push(['booted', new Date(u.bootTimeSeconds * 1000).toISOString()]);
      rows.push(['load average', `${u.load1.toFixed(2)}, ${u.load5.toFixed(2)}, ${u.load15.toFixed(2)}`]);
      if (u.cpus !== null) rows.push(['cpus online', String(u.cpus)]);
      if (u.runnable !== null && u.threads !== null) rows.push(['runnable/threads', `${u.runnable}/${u.threads}`]);
    }
    out.push(section('system', renderTable(['', ''], rows)));
  }

  if (r.memory) {
    const { mem, swap } = freeRecord(r.memory.fields);
    const h = (kib: number) => humanBytes(kib * 1024);
    out.push(section('memory', renderTable(
      ['', 'total', 'used', 'free', 'shared', 'buff/cache', 'available'],
      [
        ['Mem:', h(mem.total), h(mem.used), h(mem.free), h(mem.shared), h(mem.buff_cache), h(mem.available)],
        ['Swap:', h(swap.total), h(swap.used), h(swap.free), '', '', ''],
      ],
      [false, true, true, true, true, true, true],
    )));
  }

  if (r.buddy) {
    const b = r.buddy;
    const rows = b.zones.map((z) => [`Node ${z.node}, zone ${z.zone}`, ...z.free.map(String)]);
    const orders = Math.max(0, ...b.zones.map((z) => z.free.length));
    out.push(section(
      `free pages (buddy): ${b.freePages} pages, largest free order ${b.largestOrder ?? '-'}, ${b.highOrderPercent.toFixed(1)}% in ≥2 MiB blocks`,
      renderTable(['zone', ...Array.from({ length: orders }, (_, i) => String(i))], rows, [false, ...Array(orders).fill(true)]),
    ));
  }

  if (r.processes) {
    const p = r.processes;
    const states = Object.entries(p.byState).sort().map(([s, n]) => `${n} ${s}`).join(', ');
    const head = ['PID', 'PPID', 'S', 'RSS', 'CPU s', 'CMD'];
    const align = [true, true, false, true, true, false];
    const rows = (list: typeof p.topRss) => list.map((t) => [t.pid, t.ppid, t.state, t.rssKib === null ? '-' : humanBytes(t.rssKib * 1024), t.cpuSeconds === null ? '-' : t.cpuSeconds.toFixed(2), t.cmdline ?? `[${t.comm}]`]);
    out.push(section(`processes: ${p.total} (${p.threads} threads): ${states}`, 'top by RSS\n' + renderTable(head, rows(p.topRss), align) + '\ntop by CPU time\n' + renderTable(head, rows(p.topCpu), align)));
  }

  if (r.filesystems && r.filesystems.length > 0) {
    const rows = r.filesystems.map((f) => {
      const used = f.sizeBytes - f.freeBytes;
      const pct = used + f.availBytes > 0 ? Math.ceil((used * 100) / (used + f.availBytes)) : 0;
      return [f.device, f.fstype, humanBytes(f.sizeBytes), humanBytes(used), humanBytes(f.availBytes), `${pct}%`, `${f.files - f.filesFree}/${f.files}`, f.mountpoint];
    });
    out.push(section('filesystems', renderTable(['Filesystem', 'Type', 'Size', 'Used', 'Avail', 'Use%', 'Inodes', 'Mounted on'], rows, [false, false, true, true, true, true, true, false])));
    for (const f of r.filesystems.filter((fs) => fs.needsRecovery)) {
      out.push(`note: ${f.device}: journal not replayed (the guest had it mounted); numbers are the guest's as of its last writeback (journal commit ~5 s, dirty expiry ~30 s)`);
    }
  }

  if (r.kernelLog && r.kernelLog.lines.length > 0) {
    const k = r.kernelLog;
    const lines = k.lines.map((l) => `[${l.seconds.toFixed(6).padStart(12)}] ${l.text}`);
    out.push(section(`kernel log: last ${k.lines.length} of ${k.total} records, ${k.errorsOrWorse} at level err or worse`, lines.join('\n')));
  }

  for (const w of r.warnings) out.push(`warning: ${w}`);
  for (const e of r.errors) out.push(`error (${e.collector}): ${e.message}`);
  return out.join('\n') + '\n';
}

function section(title: string, body: string): string {
  return `\n-- ${title}\n${body}`;
}
