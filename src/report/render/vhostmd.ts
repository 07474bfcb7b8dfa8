// vhostmd metrics XML (vhostmd's metric.dtd: <metrics><metric type context [id]><name/><value/></metric></metrics>).

import type { VmReport } from '../../generated/records.js';
import type { Collector, VhostmdType } from '../collector.js';

/** One <metrics> document; every metric has context "vm" and the VM's name as id. */
export function renderVhostmd(reports: VmReport[], collectors: Collector[]): string {
  const out = ['<?xml version="1.0" ?>', '<metrics>'];
  for (const r of reports) {
    const emit = (type: VhostmdType, name: string, value: string | number | null | undefined) => {
      if (value === null || value === undefined || value === '' || (typeof value === 'number' && !Number.isFinite(value))) return;
      const v = type === 'string' || type.startsWith('real') ? value : Math.round(Number(value));
      out.push(`  <metric type="${type}" context="vm" id="${xml(r.vm)}">`, `    <name>${xml(name)}</name>`, `    <value>${xml(String(v))}</value>`, '  </metric>');
    };
    emit('uint32', 'TargetUp', r.up ? 1 : 0);
    if (!r.up) {
      emit('string', 'TargetError', r.errors.map((e) => e.message).join('; '));
      continue;
    }
    for (const c of collectors) c.vhostmd?.(r, emit);
    emit('string', 'SnapshotConsistency', r.consistency);
  }
  out.push('</metrics>');
  return out.join('\n') + '\n';
}

function xml(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}
