// Human report: one block per VM, a section per collector in the tools' own shapes (uptime, free, ps, df, buddyinfo).

import type { VmReport } from '../../generated/records.js';
import type { Collector } from '../collector.js';

export function renderReportTable(reports: VmReport[], collectors: Collector[]): string {
  return reports.map((r) => renderOne(r, collectors)).join('\n');
}

function renderOne(r: VmReport, collectors: Collector[]): string {
  const where = r.target.sample ? 'embedded sample guest' : r.target.pid != null ? `QEMU pid ${r.target.pid}${r.target.qmp ? `, ${r.target.qmp}` : ''}` : (r.target.dir ?? r.target.ram ?? r.target.disk ?? '');
  if (!r.up) return `== ${r.vm} (${where}) — FAILED: ${r.errors.map((e) => (e.collector === 'target' ? e.message : `${e.collector}: ${e.message}`)).join('; ')}\n`;
  const retries = `${r.retries ?? 0} ${r.retries === 1 ? 'retry' : 'retries'}`;
  const consistency = (r.torn ?? []).length > 0 ? `torn: ${r.torn.join('; ')}`
    : r.target.pid != null ? (r.consistency === 'paused' ? `consistency: paused for the read, ${retries}` : `consistency: live, ${retries}`)
    : r.consistency === 'paused' ? 'paused snapshot' : r.consistency === 'live' ? `LIVE copy: values may be torn (consistency: live, ${retries})` : 'consistency unknown';
  const out = [`== ${r.vm} (${where}) — ${consistency}, read in ${r.durationMs.toFixed(0)} ms`];
  for (const c of collectors) {
    const s = c.table?.(r);
    if (!s) continue;
    out.push(`\n-- ${s.title}\n${s.body}`, ...(s.notes ?? []));
  }
  for (const w of r.warnings) out.push(`warning: ${w}`);
  for (const e of r.errors) out.push(`error (${e.collector}): ${e.message}`);
  return out.join('\n') + '\n';
}
