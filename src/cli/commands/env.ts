// `nearfield env PID [target]` / `env --all [target]`: a process's environment, read from its memory through its
// own page tables, as /proc/PID/environ gives it (one KEY=value per line).

import type { EnvironList } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable } from '../define.js';
import { pidOption } from './lsof.js';

interface EnvFlags { all?: boolean }

export const command = defineRecordCommand({
  name: 'env',
  description: "a guest process's environment (or --all processes'), read from its memory like /proc/PID/environ",
  flags: (cmd) => cmd.argument('[pid]', 'the process (or --all)').option('--all', 'every process with an address space'),
  target: ([pid, target], f: EnvFlags) => (f.all && target === undefined ? pid : target),
  read: async (s, f: EnvFlags, [pid]): Promise<EnvironList> => {
    if (f.all && pid !== undefined) throw new NearfieldError('USAGE', 'give a PID or --all, not both');
    if (!f.all && pid === undefined) throw new NearfieldError('USAGE', 'env needs a PID (or --all)');
    return (await s.guest()).environ({ pid: f.all ? null : pidOption(pid, 'PID') });
  },
  items: (l) => l.processes,
  text: (l, f: EnvFlags) =>
    l.processes
      .map((p) => {
        const body = p.environ === null ? `(environment ${p.error ?? 'unreadable'})\n` : p.environ.map((e) => printable(e) + '\n').join('');
        return f.all ? `${p.pid} ${printable(p.comm)}:\n${body.replace(/^/gm, '  ')}` : body;
      })
      .join(''),
});
