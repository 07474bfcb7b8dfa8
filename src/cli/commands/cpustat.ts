// `nearfield cpustat [target]`: CPU time per CPU and mode, the cpu lines of /proc/stat computed from the guest's
// kernel_cpustat; and the report's cpu collector (node_cpu_seconds_total, the guest side of the host tier's CPU check).

import { defineRecordCommand } from '../define.js';
import { defineCollector } from '../../report/collector.js';

export const command = defineRecordCommand({
  name: 'cpustat',
  description: "CPU time per CPU and mode as /proc/stat's cpu lines (user nice system idle iowait irq softirq steal guest guest_nice)",
  read: async (s) => (await s.guest()).cpustat(),
  text: (c) => {
    const sum = c.modes.map((_, i) => c.cpus.reduce((n, cpu) => n + (cpu.ticks[i] ?? 0), 0));
    return [`cpu  ${sum.join(' ')}`, ...c.cpus.map((cpu) => `cpu${cpu.cpu} ${cpu.ticks.join(' ')}`)].join('\n') + '\n';
  },
});

export const collectors = [
  defineCollector({
    name: 'cpu',
    needs: 'ram',
    order: 15,
    collect: ({ guest, sections }) => {
      sections.cpustat = guest!.cpustat();
    },
    prometheus: (r, m) => {
      const c = r.sections.cpustat;
      if (!c) return;
      for (const cpu of c.cpus) {
        c.modes.forEach((mode, i) => {
          // node_exporter's cpu collector has no guest modes in node_cpu_seconds_total (they are inside user and nice)
          if (mode === 'guest' || mode === 'guest_nice') return;
          m.counter('node_cpu_seconds_total', 'Seconds the CPUs spent in each mode.', Number(BigInt(cpu.ns[i] ?? '0')) / 1e9, { cpu: String(cpu.cpu), mode });
        });
      }
    },
  }),
];
