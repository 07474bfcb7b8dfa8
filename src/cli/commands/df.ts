// `nearfield df`: free space of the guest's ext2/3/4 filesystem from its disk image, computed natively the
// way the guest kernel's ext4_statfs does (group descriptors, not the stale superblock totals).

import { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson, printTable, warn } from '../output.js';
import { resolveTarget } from '../../target.js';
import { call } from '../../native/gateway.js';
import { ExitCode, NearfieldError } from '../../errors.js';
import { humanSize } from '../../report/units.js';

interface DfFlags extends CommonOptions {
  humanReadable?: boolean;
  inodes?: boolean;
  blockSize?: string;
  printType?: boolean;
}

/** The numbers df prints, in bytes and inodes, from a statfs. */
export interface DfFigures {
  sizeBytes: bigint;
  usedBytes: bigint;
  availableBytes: bigint;
  usePercent: number | null;
  inodes: bigint;
  inodesUsed: bigint;
  inodesFree: bigint;
  inodesUsePercent: number | null;
}

interface StatfsLike {
  fFrsize: bigint;
  fBlocks: bigint;
  fBfree: bigint;
  fBavail: bigint;
  fFiles: bigint;
  fFfree: bigint;
}

/** coreutils df: used = blocks − bfree; use% = ⌈used·100 / (used + avail)⌉. */
export function dfFigures(s: StatfsLike): DfFigures {
  const used = s.fBlocks - s.fBfree;
  const iused = s.fFiles - s.fFfree;
  return {
    sizeBytes: s.fBlocks * s.fFrsize,
    usedBytes: used * s.fFrsize,
    availableBytes: s.fBavail * s.fFrsize,
    usePercent: ceilPercent(used, used + s.fBavail),
    inodes: s.fFiles,
    inodesUsed: iused,
    inodesFree: s.fFfree,
    inodesUsePercent: ceilPercent(iused, s.fFiles),
  };
}

function ceilPercent(part: bigint, whole: bigint): number | null {
  if (whole <= 0n) return null;
  const p = part * 100n;
  return Number(p / whole + (p % whole !== 0n ? 1n : 0n));
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

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

export function registerDf(program: Command): void {
  const cmd = program
    .command('df')
    .description('free disk space of the guest filesystem, as the guest kernel\'s statfs computes it (no mount, no bitmaps)')
    .helpOption('--help', 'display help for command')
    .option('-h, --human-readable', 'sizes in powers of 1024 (e.g. 1023M)')
    .option('-i, --inodes', 'inode counts instead of blocks')
    .option('-B, --block-size <size>', 'scale sizes by SIZE (e.g. 1K, 1M, 4096)')
    .option('-T, --print-type', 'show the filesystem type');
  withTarget(cmd);
  withFormats(cmd, false);
  cmd.action(action('df', async (positional: string | undefined, flags: DfFlags) => {
    const target = await resolveTarget(positional, flags);
    if (!target.disk) throw new NearfieldError('NOT_FOUND', 'the target has no disk image (give one with --disk IMAGE)', target.dir);
    const disk = target.disk;
    const image = call(disk, (n) => n.DiskImage.open(disk, target.partition));
    const description = call(disk, () => image.describe());
    const st = call(disk, () => image.statfs());
    const fig = dfFigures(st);
    const sel = description.selectedPartition;
    const source = sel !== undefined && sel !== null ? `${disk}:${sel}` : disk;
    const mountedOn = '/';

    let code: number = ExitCode.ok;
    for (const w of st.warnings) {
      warn(w);
      code = ExitCode.partial;
    }
    const sbStale = st.superblockFreeBlocks !== st.fBfree || st.superblockFreeInodes !== st.fFfree;
    if (st.needsRecovery || sbStale) {
      const why = st.needsRecovery ? 'the journal has not been replayed (needs_recovery)' : 'the superblock\'s free counts differ from the group descriptors';
      process.stderr.write(`nearfield: note: ${why}; the guest's writeback may lag (journal commit ~5 s, dirty expiry ~30 s)\n`);
    }

    if (flags.json) {
      printJson({
        filesystem: source,
        type: st.filesystem,
        mounted_on: mountedOn,
        size_bytes: fig.sizeBytes,
        used_bytes: fig.usedBytes,
        available_bytes: fig.availableBytes,
        use_percent: fig.usePercent,
        inodes: fig.inodes,
        inodes_used: fig.inodesUsed,
        inodes_free: fig.inodesFree,
        inodes_use_percent: fig.inodesUsePercent,
        statfs: {
          f_type: `0x${st.fType.toString(16)}`,
          f_bsize: st.fBsize,
          f_frsize: st.fFrsize,
          f_blocks: st.fBlocks,
          f_bfree: st.fBfree,
          f_bavail: st.fBavail,
          f_files: st.fFiles,
          f_ffree: st.fFfree,
          f_namelen: st.fNamelen,
          f_fsid: st.fFsid.map((v) => `0x${v.toString(16).padStart(8, '0')}`),
        },
        overhead_blocks: st.overheadBlocks,
        kernel_reserved_blocks: st.resvBlocks,
        superblock: {
          label: st.label,
          uuid: st.uuid,
          state: st.state,
          errors_behavior: st.errorsBehavior,
          needs_recovery: st.needsRecovery,
          orphans_present: st.orphansPresent,
          features: { compat: st.featuresCompat, incompat: st.featuresIncompat, ro_compat: st.featuresRoCompat },
          last_mounted_on: st.lastMounted,
          mount_time: isoTime(st.mountTime),
          write_time: isoTime(st.writeTime),
          check_time: isoTime(st.checkTime),
          mkfs_time: isoTime(st.mkfsTime),
          mount_count: st.mountCount,
          max_mount_count: st.maxMountCount,
          error_count: st.errorCount,
          kbytes_written: st.kbytesWritten,
          block_size: st.blockSize,
          cluster_size: st.clusterSize,
          blocks_count: st.blocksCount,
          reserved_blocks: st.reservedBlocks,
          inodes_count: st.inodesCount,
          groups_count: st.groupsCount,
          journal_blocks: st.journalBlocks ?? null,
          free_blocks: st.superblockFreeBlocks,
          free_inodes: st.superblockFreeInodes,
          free_counts_stale: sbStale,
        },
        image: {
          path: description.path,
          format: description.format,
          virtual_size: description.virtualSize,
          backing_chain: description.backingChain,
          partition_table: description.partitionTable,
          partitions: description.partitions,
          selected_partition: description.selectedPartition ?? null,
          filesystem_offset: description.filesystemOffset ?? null,
        },
        warnings: st.warnings,
      });
      return code;
    }

    const type = flags.printType ? [st.filesystem] : [];
    const typeHead = flags.printType ? ['Type'] : [];
    const pct = (p: number | null) => (p === null ? '-' : `${p}%`);
    if (flags.inodes) {
      const fmt = (n: bigint) => (flags.humanReadable ? humanSize(n) : n.toString());
      printTable(
        ['Filesystem', ...typeHead, 'Inodes', 'IUsed', 'IFree', 'IUse%', 'Mounted on'],
        [[source, ...type, fmt(fig.inodes), fmt(fig.inodesUsed), fmt(fig.inodesFree), pct(fig.inodesUsePercent), mountedOn]],
        [false, ...type.map(() => false), true, true, true, true, false],
      );
      return code;
    }
    let head: string;
    let fmt: (bytes: bigint) => string;
    if (flags.humanReadable) {
      head = 'Size';
      fmt = humanSize;
    } else {
      const bs = parseBlockSize(flags.blockSize ?? '1K');
      head = `${bs.label}-blocks`;
      fmt = (b) => ceilDiv(b, bs.bytes).toString();
    }
    printTable(
      ['Filesystem', ...typeHead, head, 'Used', 'Avail', 'Use%', 'Mounted on'],
      [[source, ...type, fmt(fig.sizeBytes), fmt(fig.usedBytes), fmt(fig.availableBytes), pct(fig.usePercent), mountedOn]],
      [false, ...type.map(() => false), true, true, true, true, false],
    );
    return code;
  }));
}

function isoTime(t: number | null | undefined): string | null {
  return t === null || t === undefined ? null : new Date(t * 1000).toISOString();
}
