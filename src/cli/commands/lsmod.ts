// `nearfield lsmod` (alias `modules`): the guest's loaded modules as lsmod and /proc/modules show them; and the
// report's modules collector (count and taint).

import type { LoadedModule } from '../../generated/records.js';
import { defineRecordCommand } from '../define.js';
import { defineCollector } from '../../report/collector.js';

/** kmod lsmod: "%-19s %8lu  %d" and the users, comma-separated. */
function lsmodLine(m: LoadedModule): string {
  const users = [...m.usedBy, ...(m.permanent ? ['[permanent]'] : [])];
  return `${m.name.padEnd(19)} ${String(m.sizeBytes).padStart(8)}  ${m.refcount}${users.length ? ` ${users.join(',')}` : ''}`;
}

/** One /proc/modules line (kernel/module/procfs.c m_show). */
function procLine(m: LoadedModule): string {
  const users = [...m.usedBy, ...(m.permanent ? ['[permanent]'] : [])];
  return `${m.name} ${m.sizeBytes} ${m.refcount} ${users.length ? users.map((u) => `${u},`).join('') : '-'} ${m.state} ${m.address}${m.taints ? ` (${m.taints})` : ''}`;
}

export const command = defineRecordCommand({
  name: 'lsmod',
  aliases: ['modules'],
  description: "the guest's loaded modules, like lsmod (--proc: as /proc/modules prints them)",
  flags: (cmd) => cmd.option('--proc', 'print /proc/modules lines (size, references, users, state, address, taints)'),
  read: async (s) => (await s.guest()).modules(),
  items: (l) => l.modules,
  text: (l, f: { proc?: boolean }) =>
    (f.proc ? l.modules.map(procLine) : ['Module                  Size  Used by', ...l.modules.map(lsmodLine)]).join('\n') + '\n',
});

export const collectors = [
  defineCollector({
    name: 'modules',
    needs: 'ram',
    order: 45,
    collect: ({ guest, sections }) => {
      sections.modules = guest!.modules();
    },
    table: (r) => {
      const l = r.sections.modules;
      if (!l) return undefined;
      const tainted = l.modules.filter((m) => m.taints);
      return {
        title: `modules: ${l.modules.length} loaded${tainted.length ? `, ${tainted.length} tainted` : ''}`,
        body: l.modules.map((m) => `${m.name}${m.taints ? ` (${m.taints})` : ''}`).join(' '),
      };
    },
    prometheus: (r, m) => {
      const l = r.sections.modules;
      m.gauge('nearfield_modules_loaded', 'Kernel modules loaded in the guest.', l?.modules.length);
      m.gauge('nearfield_modules_tainted', 'Loaded modules that taint the kernel (out-of-tree, unsigned, proprietary …).', l?.modules.filter((x) => x.taints).length);
    },
    vhostmd: (r, emit) => emit('uint64', 'KernelModules', r.sections.modules?.modules.length),
  }),
];
