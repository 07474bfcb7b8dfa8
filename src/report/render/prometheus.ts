// Prometheus text exposition format 0.0.4, with node_exporter's metric names and units so existing dashboards work.

import type { VmReport } from '../../generated/records.js';
import type { Collector, Labels, MetricSink } from '../collector.js';

interface Family { help: string; type: 'gauge' | 'counter'; samples: { labels: Labels; value: number }[] }

export interface PrometheusOptions {
  /** Overrides the `instance` label (default: none, Prometheus adds its own). */
  instance?: string;
}

/** Render every VM's report as one exposition: each metric family once, one sample per VM (label `vm`). */
export function renderPrometheus(reports: VmReport[], collectors: Collector[], opts: PrometheusOptions = {}): string {
  const families = new Map<string, Family>();
  const sinkFor = (base: Labels): MetricSink => {
    const add = (type: Family['type']) => (name: string, help: string, value: number | null | undefined, labels: Labels = {}) => {
      if (value === null || value === undefined || !Number.isFinite(value)) return;
      let f = families.get(name);
      if (!f) families.set(name, (f = { help, type, samples: [] }));
      f.samples.push({ labels: { ...base, ...labels }, value });
    };
    return { gauge: add('gauge'), counter: add('counter') };
  };

  for (const r of reports) {
    const m = sinkFor(opts.instance ? { instance: opts.instance, vm: r.vm } : { vm: r.vm });
    // A target that could not be read says so, with why, and nothing else: there is nothing to report for it.
    m.gauge('nearfield_target_up', 'Whether nearfield could read this VM\'s snapshot (0: see nearfield_target_error_info).', r.up ? 1 : 0);
    for (const e of r.errors) {
      if (!r.up || e.collector === 'ram' || e.collector === 'disk') m.gauge('nearfield_target_error_info', 'Why a VM, or one of its sources (ram, disk), could not be read.', 1, { source: e.collector, reason: e.message });
    }
    if (!r.up) {
      m.gauge('nearfield_report_duration_seconds', 'Time nearfield took to read this VM.', r.durationMs / 1000);
      continue;
    }
    for (const c of collectors) {
      // a collector whose source (the RAM or the disk) could not be opened did not run: it did not succeed
      const failed = r.errors.some((e) => e.collector === c.name || e.collector === c.needs);
      m.gauge('nearfield_collector_success', 'Whether a nearfield collector succeeded for this VM.', failed ? 0 : 1, { collector: c.name });
    }
    m.gauge('nearfield_report_duration_seconds', 'Time nearfield took to read this VM.', r.durationMs / 1000);
    m.gauge('nearfield_snapshot_paused', 'Whether the guest was paused when its RAM was copied (1), live (0).', r.consistency === 'unknown' ? null : r.consistency === 'paused' ? 1 : 0);
    m.counter('nearfield_torn_reads_total', 'Torn reads of a live guest (a list, seqcount or record that changed while read), repaired by a retry or not.', r.tornReads);
    m.counter('nearfield_read_retries_total', 'Walks of a live guest re-run because what they read did not hold together.', r.retries);
    m.gauge('nearfield_torn', 'Whether something was still torn after the retries (see the report\'s torn list).', (r.torn ?? []).length > 0 ? 1 : 0);
    m.gauge('nearfield_warnings', 'Number of warnings (partial or possibly stale data) for this VM.', r.warnings.length);
    for (const c of collectors) c.prometheus?.(r, m);
  }

  const lines: string[] = [];
  for (const [name, f] of families) {
    lines.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`);
    for (const s of f.samples) lines.push(`${name}${renderLabels(s.labels)} ${renderValue(s.value)}`);
  }
  return lines.join('\n') + '\n';
}

function renderLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

function renderValue(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return v.toPrecision(12).replace(/\.?0+$/, '');
}

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
