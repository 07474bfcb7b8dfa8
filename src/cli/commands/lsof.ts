// `nearfield lsof [target]`: every process's open files, the way `ls -l /proc/PID/fd` and lsof show them;
// and the report's open-files collector (counts of open files, sockets and deleted files).

import type { OpenFile, OpenFileList } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable, type Column } from '../define.js';
import { defineCollector } from '../../report/collector.js';
import { renderTable } from '../output.js';

interface LsofFlags { process?: string }

/** A guest process id given with `flag` as a number (usage error otherwise). */
export function pidOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) > 2 ** 31 - 1) throw new NearfieldError('USAGE', `${flag} takes a process id, not "${value}"`);
  return Number(value);
}

/** lsof's NAME: the path, or for a socket its protocol and endpoints ("TCP 127.0.0.1:53054->127.0.0.1:7001 (ESTABLISHED)"). */
export function lsofName(f: OpenFile): string {
  const s = f.socket;
  if (s && (s.family === 'inet' || s.family === 'inet6')) {
    return `${s.protocol} ${s.local ?? '*'}${s.remote ? `->${s.remote}` : ''}${s.protocol === 'TCP' ? ` (${s.state})` : ''}`;
  }
  if (s && s.family === 'unix') return `${s.local ?? f.target ?? ''} type=${s.protocol} (${s.state})`;
  return printable(f.target ?? `(${f.error ?? 'unreadable'})`);
}

/** lsof's TYPE: IPv4/IPv6/unix for sockets, else the file type. */
function lsofType(f: OpenFile): string {
  if (f.socket?.family === 'inet') return 'IPv4';
  if (f.socket?.family === 'inet6') return 'IPv6';
  if (f.socket?.family === 'unix') return 'unix';
  return f.fileType;
}

const columns: Column<OpenFile>[] = [
  { header: 'COMMAND', cell: (f) => printable(f.comm) },
  { header: 'PID', cell: (f) => f.pid, right: true },
  { header: 'FD', cell: (f) => `${f.fd}${f.access}`, right: true },
  { header: 'TYPE', cell: (f) => lsofType(f) },
  { header: 'DEVICE', cell: (f) => f.rdev ?? f.device },
  { header: 'OFF', cell: (f) => (f.fileType === 'REG' || f.fileType === 'DIR' ? f.position : ''), right: true },
  { header: 'NODE', cell: (f) => f.inode, right: true },
  { header: 'NAME', cell: (f) => lsofName(f) },
];

export const command = defineRecordCommand({
  name: 'lsof',
  description: 'open files of every guest process (or -p PID), like lsof and ls -l /proc/PID/fd: fd, type, path (deleted marked), inode, offset, flags; sockets with their endpoints',
  flags: (cmd) => cmd.option('-p, --process <pid>', 'only this guest process (lsof -p; --pid names a QEMU process to read live)'),
  validate: (f: LsofFlags) => void pidOption(f.process, '--process'),
  read: async (s, f: LsofFlags): Promise<OpenFileList> => (await s.guest()).files({ pid: pidOption(f.process, '--process') ?? null }),
  items: (l) => l.files,
  rows: (l) => l.files,
  columns,
});

export const collectors = [
  defineCollector({
    name: 'files',
    needs: 'ram',
    order: 46,
    collect: ({ guest, sections }) => {
      sections.files = guest!.files();
    },
    table: (r) => {
      const l = r.sections.files;
      if (!l) return undefined;
      const sockets = l.files.filter((f) => f.fileType === 'SOCK').length;
      const deleted = l.files.filter((f) => f.deleted).length;
      const perProcess = new Map<number, { comm: string; n: number }>();
      for (const f of l.files) {
        const e = perProcess.get(f.pid) ?? { comm: f.comm, n: 0 };
        e.n++;
        perProcess.set(f.pid, e);
      }
      const top = [...perProcess].sort((a, b) => b[1].n - a[1].n || a[0] - b[0]).slice(0, 5);
      return {
        title: `open files: ${l.files.length} in ${perProcess.size} processes, ${sockets} sockets, ${deleted} on deleted files`,
        body: renderTable(['PID', 'COMMAND', 'FDS'], top.map(([pid, e]) => [pid, printable(e.comm), e.n]), [true, false, true]),
      };
    },
    prometheus: (r, m) => {
      const l = r.sections.files;
      if (!l) return;
      m.gauge('nearfield_open_fds', 'File descriptors open in all guest processes.', l.files.length);
      m.gauge('nearfield_open_sockets', 'File descriptors of guest processes that are sockets.', l.files.filter((f) => f.fileType === 'SOCK').length);
      m.gauge('nearfield_open_deleted_files', 'Open file descriptors on files that were deleted (space not yet freed).', l.files.filter((f) => f.deleted).length);
    },
    vhostmd: (r, emit) => emit('uint64', 'OpenFiles', r.sections.files?.files.length),
  }),
];
