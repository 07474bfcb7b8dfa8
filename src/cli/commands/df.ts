// `nearfield df`: free space of the guest's ext2/3/4 filesystem from its disk image, computed natively the way the
// guest kernel's ext4_statfs does (group descriptors, not the stale superblock totals); and the report's
// filesystems collector.

import type { FilesystemUsage, MountTable } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, type Column } from '../define.js';
import { note, renderTable, type OutputOptions } from '../output.js';
import { defineCollector } from '../../report/collector.js';
import { humanBytes, humanSize } from '../../report/units.js';

interface DfFlags {
  humanReadable?: boolean;
  inodes?: boolean;
  blockSize?: string;
  printType?: boolean;
}

/** coreutils -B SIZE: an integer with an optional K/M/G/T/P/E suffix (1024-based, or 1000-based with "B"). */
export function parseBlockSize(text: string): { bytes: bigint; label: string } {
  const m = /^(\d*)([KMGTPE])?(i?B)?$/i.exec(text.trim());
  if (!m || (m[1] === '' && !m[2])) throw new NearfieldError('USAGE', `invalid block size "${text}" (e.g. 1K, 4096, 1M, 1MB)`);
  const count = m[1] === '' ? 1n : BigInt(m[1]!);
  const power = m[2] ? 'KMGTPE'.indexOf(m[2].toUpperCase()) + 1 : 0;
  const base = m[3] && m[3].toUpperCase() === 'B' ? 1000n : 1024n;
  const bytes = count * base ** BigInt(power);
  if (bytes <= 0n) throw new NearfieldError('USAGE', `block size must be positive, not "${text}"`);
  return { bytes, label: text.trim() };
}

/** Where the guest mounted it: its RAM's mount table when read, else where the superblock says it was last mounted. */
const mountedOn = (u: FilesystemUsage) => u.mountpoint ?? (u.superblock.lastMountedOn || '-');

/** The guest's mount point for this filesystem: the first mount of the superblock with its UUID. */
export function mountpointOf(u: FilesystemUsage, table: MountTable | undefined): string | null {
  const uuid = u.superblock.uuid.toLowerCase();
  return table?.mounts.find((m) => m.uuid !== null && m.uuid === uuid)?.mountpoint ?? null;
}
const pct = (p: number | null) => (p === null ? '-' : `${p}%`);

function columns(f: DfFlags): Column<FilesystemUsage>[] {
  const type: Column<FilesystemUsage>[] = f.printType ? [{ header: 'Type', cell: (u) => u.filesystem }] : [];
  if (f.inodes) {
    const n = (v: number) => (f.humanReadable ? humanSize(BigInt(v)) : String(v));
    return [
      { header: 'Filesystem', cell: (u) => u.device }, ...type,
      { header: 'Inodes', cell: (u) => n(u.df.inodes), right: true },
      { header: 'IUsed', cell: (u) => n(u.df.inodesUsed), right: true },
      { header: 'IFree', cell: (u) => n(u.df.inodesFree), right: true },
      { header: 'IUse%', cell: (u) => pct(u.df.inodesUsePercent), right: true },
      { header: 'Mounted on', cell: mountedOn },
    ];
  }
  const bs = f.humanReadable ? null : parseBlockSize(f.blockSize ?? '1K');
  const fmt = (bytes: number) => (bs === null ? humanSize(BigInt(bytes)) : ((BigInt(bytes) + bs.bytes - 1n) / bs.bytes).toString());
  return [
    { header: 'Filesystem', cell: (u) => u.device }, ...type,
    { header: bs === null ? 'Size' : `${bs.label}-blocks`, cell: (u) => fmt(u.df.sizeBytes), right: true },
    { header: 'Used', cell: (u) => fmt(u.df.usedBytes), right: true },
    { header: 'Avail', cell: (u) => fmt(u.df.availBytes), right: true },
    { header: 'Use%', cell: (u) => pct(u.df.usePercent), right: true },
    { header: 'Mounted on', cell: mountedOn },
  ];
}

/** Why the numbers may lag the guest (a mounted or crashed guest's disk), or null. */
export function lagNote(u: FilesystemUsage): string | null {
  if (u.superblock.needsRecovery) return "the journal has not been replayed (needs_recovery); the guest's writeback may lag (journal commit ~5 s, dirty expiry ~30 s)";
  if (u.superblock.freeCountsStale) return "the superblock's free counts differ from the group descriptors; the guest's writeback may lag (journal commit ~5 s, dirty expiry ~30 s)";
  return null;
}

export const command = defineRecordCommand({
  name: 'df',
  description: "free disk space of the guest filesystem, as the guest kernel's statfs computes it (no mount, no bitmaps)",
  flags: (cmd) =>
    cmd
      .option('-h, --human-readable', 'sizes in powers of 1024 (e.g. 1023M)')
      .option('-i, --inodes', 'inode counts instead of blocks')
      .option('-B, --block-size <size>', 'scale sizes by SIZE (e.g. 1K, 1M, 4096)')
      .option('-T, --print-type', 'show the filesystem type'),
  validate: (f: DfFlags) => void (f.blockSize !== undefined && parseBlockSize(f.blockSize)),
  read: async (s, f: DfFlags & OutputOptions) => {
    const u = s.disk().statfs();
    // The guest's RAM, when the target has it, says where the filesystem is mounted.
    if (s.target.ram) {
      try {
        u.mountpoint = mountpointOf(u, (await s.guest()).mounts());
      } catch (e) {
        note(f, `mount point unknown: ${(e as Error).message}`);
      }
    }
    const lag = lagNote(u);
    if (lag) note(f, lag);
    return u;
  },
  rows: (u) => [u],
  columns: (f: DfFlags) => columns(f),
});

export const collectors = [
  defineCollector({
    name: 'filesystems',
    needs: 'disk',
    order: 50,
    collect: ({ disk, sections }) => {
      const u = disk!.statfs();
      u.mountpoint = mountpointOf(u, sections.mounts);
      sections.statfs = u;
    },
    table: (r) => {
      const u = r.sections.statfs;
      if (!u) return undefined;
      const inodes = `${u.df.inodesUsed}/${u.df.inodes}`;
      return {
        title: 'filesystems',
        body: renderTable(
          ['Filesystem', 'Type', 'Size', 'Used', 'Avail', 'Use%', 'Inodes', 'Mounted on'],
          [[u.device, u.filesystem, humanBytes(u.df.sizeBytes), humanBytes(u.df.usedBytes), humanBytes(u.df.availBytes), pct(u.df.usePercent), inodes, mountedOn(u)]],
          [false, false, true, true, true, true, true, false],
        ),
        notes: u.superblock.needsRecovery
          ? [`note: ${u.device}: journal not replayed (the guest had it mounted); numbers are the guest's as of its last writeback (journal commit ~5 s, dirty expiry ~30 s)`]
          : [],
      };
    },
    prometheus: (r, m) => {
      const u = r.sections.statfs;
      if (!u) return;
      const l = { device: u.device, fstype: u.filesystem, mountpoint: mountedOn(u) };
      m.gauge('node_filesystem_size_bytes', 'Filesystem size in bytes.', u.df.sizeBytes, l);
      m.gauge('node_filesystem_free_bytes', 'Filesystem free space in bytes.', u.statfs.fBfree * u.statfs.fFrsize, l);
      m.gauge('node_filesystem_avail_bytes', 'Filesystem space available to non-root users in bytes.', u.df.availBytes, l);
      m.gauge('node_filesystem_files', 'Filesystem total file nodes.', u.df.inodes, l);
      m.gauge('node_filesystem_files_free', 'Filesystem total free file nodes.', u.df.inodesFree, l);
      m.gauge('node_filesystem_readonly', 'Filesystem read-only status.', 0, l);
      m.gauge('nearfield_filesystem_needs_recovery', 'Whether the journal has not been replayed (the image was taken from a live or crashed guest).', u.superblock.needsRecovery ? 1 : 0, l);
    },
    vhostmd: (r, emit) => {
      const u = r.sections.statfs;
      if (!u) return;
      emit('uint64', `FilesystemSizeBytes:${mountedOn(u)}`, u.df.sizeBytes);
      emit('uint64', `FilesystemAvailBytes:${mountedOn(u)}`, u.df.availBytes);
      emit('uint64', `FilesystemFreeBytes:${mountedOn(u)}`, u.statfs.fBfree * u.statfs.fFrsize);
    },
  }),
];
