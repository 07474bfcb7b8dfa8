// `nearfield cgroups [target]`: the guest's cgroup v2 tree, like `systemd-cgls`/`ls /sys/fs/cgroup`: each cgroup
// with its processes, memory.current/max and cpu usage.

import type { Cgroup } from '../../generated/records.js';
import { defineRecordCommand, type Column } from '../define.js';
import { humanBytes } from '../../report/units.js';

const columns: Column<Cgroup>[] = [
  { header: 'CGROUP', cell: (c) => c.path },
  { header: 'PROCS', cell: (c) => c.procs.length, right: true },
  { header: 'THREADS', cell: (c) => c.threads.length, right: true },
  { header: 'MEM.CURRENT', cell: (c) => (c.memoryCurrentBytes === null ? '-' : humanBytes(c.memoryCurrentBytes)), right: true },
  { header: 'MEM.MAX', cell: (c) => (c.memoryMax === null ? '-' : c.memoryMax === 'max' ? 'max' : humanBytes(Number(c.memoryMax))), right: true },
  { header: 'CPU s', cell: (c) => (c.cpu ? (c.cpu.usageUsec / 1e6).toFixed(2) : '-'), right: true },
  { header: 'PIDS', cell: (c) => (c.pidsCurrent === null ? '-' : `${c.pidsCurrent}/${c.pidsMax}`), right: true },
  { header: 'CONTROLLERS', cell: (c) => c.subtreeControl.join(' ') },
  { header: 'PIDS LIST', cell: (c) => (c.procs.length > 8 ? `${c.procs.slice(0, 8).join(' ')} …` : c.procs.join(' ')) },
];

export const command = defineRecordCommand({
  name: 'cgroups',
  description: "the guest's cgroup v2 tree: each cgroup's processes, memory.current, memory.max, cpu usage and pids",
  read: async (s) => (await s.guest()).cgroups(),
  items: (t) => t.cgroups,
  rows: (t) => t.cgroups,
  columns,
});
