// `nearfield pmap PID [target]` / `pmap --all [target]`: a process's memory map, like pmap and /proc/PID/maps
// (--proc prints the very lines the guest's /proc/PID/maps would).

import type { MapsList, ProcessMaps, Vma } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable } from '../define.js';
import { renderTable } from '../output.js';
import { pidOption } from './lsof.js';

interface PmapFlags { all?: boolean; proc?: boolean }

/** "0x00400000" → "00400000": at least 8 hex digits, as seq_put_hex_ll(…, 8) prints. */
const hex8 = (h: string) => BigInt(h).toString(16).padStart(8, '0');

/** One /proc/PID/maps line (fs/proc/task_mmu.c show_map_vma): the header padded to 73 columns before a name. */
export function procMapsLine(v: Vma): string {
  const head = `${hex8(v.start)}-${hex8(v.end)} ${v.perms} ${hex8(v.offset)} ${v.dev} ${v.inode} `;
  return v.path === null ? head : `${head.padEnd(72)} ${v.path}`;
}

const kib = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? '-' : `${Math.floor(bytes / 1024)}K`);

function pmapText(p: ProcessMaps, proc: boolean): string {
  if (proc) return p.vmas.map((v) => procMapsLine(v) + '\n').join('');
  const rows = p.vmas.map((v) => [BigInt(v.start).toString(16).padStart(16, '0'), kib(v.sizeBytes), kib(v.rssBytes), v.perms, hex8(v.offset), v.dev, v.inode, printable(v.path ?? '[ anon ]')]);
  return (
    `${p.pid}:   ${printable(p.comm)}\n` +
    renderTable(['Address', 'Kbytes', 'RSS', 'Mode', 'Offset', 'Device', 'Inode', 'Mapping'], rows, [false, true, true, false, false, false, true, false]) +
    `\n total VSZ ${kib(p.vszBytes)}, RSS ${kib(p.rssBytes)}${p.error ? `  (${p.error})` : ''}\n`
  );
}

export const command = defineRecordCommand({
  name: 'pmap',
  description: "a guest process's memory map (VMAs), like pmap and /proc/PID/maps: range, permissions, offset, device, inode, path or [heap]/[stack]/[vdso]; --all for every process",
  flags: (cmd) =>
    cmd
      .argument('[pid]', 'the process (or --all)')
      .option('--all', 'every process with an address space')
      .option('--proc', 'print /proc/PID/maps lines'),
  // `pmap --all DIR`: commander hands DIR to [pid]
  target: ([pid, target], f: PmapFlags) => (f.all && target === undefined ? pid : target),
  read: async (s, f: PmapFlags, [pid]): Promise<MapsList> => {
    if (f.all && pid !== undefined) throw new NearfieldError('USAGE', 'give a PID or --all, not both');
    if (!f.all && pid === undefined) throw new NearfieldError('USAGE', 'pmap needs a PID (or --all)');
    return (await s.guest()).maps({ pid: f.all ? null : pidOption(pid, 'PID') });
  },
  items: (l) => l.processes,
  text: (l, f: PmapFlags) =>
    l.processes.map((p) => (f.proc && f.all ? `${p.pid} ${printable(p.comm)}:\n` : '') + pmapText(p, f.proc === true)).join(f.proc ? '' : '\n'),
});
