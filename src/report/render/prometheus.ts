// Prometheus text exposition format 0.0.4, with node_exporter's metric names and units so existing dashboards work.

import { meminfoCountFields, type VmReport } from '../model.js';

type Labels = Record<string, string>;
interface Family { help: string; type: 'gauge' | 'counter'; samples: { labels: Labels; value: number }[] }

export interface PrometheusOptions {
  /** Overrides the `instance` label (default: none, Prometheus adds its own). */
  instance?: string;
}

/** Render every VM's report as one exposition: each metric family once, one sample per VM (label `vm`). */
export function renderPrometheus(reports: VmReport[], opts: PrometheusOptions = {}): string {
  const families = new Map<string, Family>();
  const add = (name: string, help: string, value: number | null | undefined, labels: Labels, type: Family['type'] = 'gauge') => {
    if (value === null || value === undefined || !Number.isFinite(value)) return;
    let f = families.get(name);
    if (!f) families.set(name, (f = { help, type, samples: [] }));
    f.samples.push({ labels, value });
  };

  for (const r of reports) {
    const base: Labels = opts.instance ? { instance: opts.instance, vm: r.vm } : { vm: r.vm };
    const ok = (collector: string) => !r.errors.some((e) => e.collector === collector);
    for (const c of ['kernel', 'uptime', 'processes', 'memory', 'buddyinfo', 'dmesg', 'filesystems']) {
      add('nearfield_collector_success', 'Whether a nearfield collector succeeded for this VM.', ok(c) ? 1 : 0, { ...base, collector: c });
    }
    add('nearfield_report_duration_seconds', 'Time nearfield took to read this VM.', r.durationMs / 1000, base);
    add('nearfield_snapshot_paused', 'Whether the guest was paused when its RAM was copied (1), live (0).', r.consistency === 'unknown' ? null : r.consistency === 'paused' ? 1 : 0, base);
    add('nearfield_warnings', 'Number of warnings (partial or possibly stale data) for this VM.', r.warnings.length, base);

    if (r.uptime) {
      const u = r.uptime;
      add('node_uname_info', 'Labeled system information as provided by the uname system call.', 1, {
        ...base,
        sysname: 'Linux',
        release: u.release ?? r.kernel?.release ?? '',
        version: u.version ?? '',
        machine: u.machine ?? 'x86_64',
        nodename: u.hostname ?? '',
        domainname: u.domainname ?? '',
      });
      add('node_boot_time_seconds', 'Node boot time, in unixtime.', u.bootTimeSeconds, base);
      add('node_time_seconds', 'System time in seconds since epoch (1970).', u.guestTimeSeconds, base);
      add('nearfield_uptime_seconds', 'Seconds since the guest booted (CLOCK_BOOTTIME) at the snapshot.', u.uptimeSeconds, base);
      add('node_load1', '1m load average.', u.load1, base);
      add('node_load5', '5m load average.', u.load5, base);
      add('node_load15', '15m load average.', u.load15, base);
      add('node_procs_running', 'Number of processes in runnable state.', u.runnable, base);
      add('nearfield_cpus_online', 'Number of online CPUs in the guest.', u.cpus, base);
    }
    if (r.processes) {
      const p = r.processes;
      for (const [state, n] of Object.entries(p.byState)) {
        add('node_processes_state', 'Number of processes in each state.', n, { ...base, state });
      }
      add('node_processes_threads', 'Allocated threads in system', p.threads, base);
      add('node_processes_pids', 'Number of PIDs', p.total, base);
    }
    if (r.memory) {
      for (const [field, value] of Object.entries(r.memory.fields)) {
        // node_exporter's meminfo collector: "Active(anon)" → node_memory_Active_anon_bytes; HugePages_* are counts.
        const name = field.replace(/\((.*)\)/, '_$1').replace(/[^a-zA-Z0-9_]/g, '_');
        if (meminfoCountFields.has(field)) add(`node_memory_${name}`, `Memory information field ${name}.`, value, base);
        else add(`node_memory_${name}_bytes`, `Memory information field ${name}_bytes.`, value * 1024, base);
      }
    }
    if (r.buddy) {
      for (const z of r.buddy.zones) {
        z.free.forEach((count, order) => {
          add('node_buddyinfo_blocks', 'Count of free blocks according to size.', count, { ...base, node: String(z.node), zone: z.zone, size: String(order) });
        });
      }
      add('nearfield_buddy_free_pages', 'Free pages in the buddy allocator, all zones.', r.buddy.freePages, base);
      add('nearfield_buddy_largest_free_order', 'Largest order with a free block (fragmentation).', r.buddy.largestOrder, base);
      add('nearfield_buddy_high_order_free_ratio', 'Share of free memory in blocks of order 9 (2 MiB) or more.', r.buddy.highOrderPercent / 100, base);
    }
    if (r.kernelLog) {
      add('nearfield_kernel_log_records', 'Records in the guest kernel\'s printk ring buffer.', r.kernelLog.total, base);
      add('nearfield_kernel_log_errors', 'Kernel log records at level err or worse (0-3).', r.kernelLog.errorsOrWorse, base);
    }
    for (const fs of r.filesystems ?? []) {
      const l = { ...base, device: fs.device, fstype: fs.fstype, mountpoint: fs.mountpoint };
      add('node_filesystem_size_bytes', 'Filesystem size in bytes.', fs.sizeBytes, l);
      add('node_filesystem_free_bytes', 'Filesystem free space in bytes.', fs.freeBytes, l);
      add('node_filesystem_avail_bytes', 'Filesystem space available to non-root users in bytes.', fs.availBytes, l);
      add('node_filesystem_files', 'Filesystem total file nodes.', fs.files, l);
      add('node_filesystem_files_free', 'Filesystem total free file nodes.', fs.filesFree, l);
      add('node_filesystem_readonly', 'Filesystem read-only status.', 0, l);
      add('nearfield_filesystem_needs_recovery', 'Whether the journal has not been replayed (the image was taken from a live or crashed guest).', fs.needsRecovery ? 1 : 0, l);
    }
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
