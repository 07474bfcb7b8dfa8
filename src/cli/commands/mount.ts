// `nearfield mount` (alias `findmnt`): the guest's mount table as PID 1 sees it, like mount(8) or /proc/mounts;
// and the report's mounts collector (whose table lists them, and which tells df where the disk is mounted).

import type { Mount } from '../../generated/records.js';
import { defineRecordCommand } from '../define.js';
import { defineCollector } from '../../report/collector.js';
import { renderTable } from '../output.js';

/** One /proc/mounts line: device mountpoint type options 0 0. */
export function procMountsLine(m: Mount): string {
  return `${m.device} ${m.mountpoint} ${m.fstype} ${m.options.join(',')} 0 0`;
}

export const command = defineRecordCommand({
  name: 'mount',
  aliases: ['findmnt'],
  description: "the guest's mount table, like mount (--proc: as /proc/mounts prints it)",
  flags: (cmd) => cmd.option('--proc', 'print /proc/mounts lines'),
  read: async (s) => (await s.guest()).mounts(),
  items: (t) => t.mounts,
  text: (t, f: { proc?: boolean }) =>
    t.mounts.map((m) => (f.proc ? procMountsLine(m) : `${m.device} on ${m.mountpoint} type ${m.fstype} (${m.options.join(',')})`)).join('\n') + '\n',
});

export const collectors = [
  defineCollector({
    name: 'mounts',
    needs: 'ram',
    order: 48,
    collect: ({ guest, sections }) => {
      sections.mounts = guest!.mounts();
    },
    table: (r) => {
      const t = r.sections.mounts;
      if (!t) return undefined;
      return {
        title: `mounts: ${t.mounts.length}`,
        body: renderTable(['Mounted on', 'Type', 'Device', 'Options'], t.mounts.map((m) => [m.mountpoint, m.fstype, m.device, m.options.join(',')])),
      };
    },
  }),
];
