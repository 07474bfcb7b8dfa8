//! ext4 on-disk layouts (superblock, group descriptor, inode, linear directory entry), kernel Documentation/filesystems/ext4/.
// Pure functions over byte buffers; every read is bounds-checked and malformed input throws Ext4FormatError.

import { crc32cRaw } from './crc32c.js';

export class Ext4FormatError extends Error {
  constructor(message: string, readonly offset?: number) {
    super(message);
    this.name = 'Ext4FormatError';
  }
}

export const SUPERBLOCK_OFFSET = 1024;
export const SUPERBLOCK_SIZE = 1024;
const EXT4_SUPER_MAGIC = 0xef53;

// s_feature_compat / s_feature_incompat / s_feature_ro_compat bits (ext4 "Super Block" table).
export const INCOMPAT_RECOVER = 0x4;
export const INCOMPAT_META_BG = 0x10;
export const INCOMPAT_64BIT = 0x80;
export const INCOMPAT_MMP = 0x100;
export const RO_COMPAT_HUGE_FILE = 0x8;
export const RO_COMPAT_METADATA_CSUM = 0x400;
export const COMPAT_SPARSE_SUPER2 = 0x200;
export const RO_COMPAT_SPARSE_SUPER = 0x1;

/** ro_compat bits the npm ext2fs build (libext2fs 1.44) accepts on its read-write open, measured one bit at a time:
 *  sparse_super, large_file, huge_file, gdt_csum, dir_nlink, extra_isize, quota, bigalloc, metadata_csum, read-only,
 *  project. Everything else (btree_dir 0x4, has_snapshot 0x80, replica 0x800, shared_blocks 0x4000, verity 0x8000,
 *  orphan_present 0x10000 and any later bit) makes it fail with EXT2_ET_RO_UNSUPP_FEATURE, so we mask those. */
export const RO_COMPAT_LIBEXT2FS_SUPP = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x100 | 0x200 | 0x400 | 0x1000 | 0x2000;

export const roCompatNames: Record<number, string> = {
  0x1: 'sparse_super', 0x2: 'large_file', 0x4: 'btree_dir', 0x8: 'huge_file', 0x10: 'gdt_csum', 0x20: 'dir_nlink',
  0x40: 'extra_isize', 0x80: 'has_snapshot', 0x100: 'quota', 0x200: 'bigalloc', 0x400: 'metadata_csum', 0x800: 'replica',
  0x1000: 'read-only', 0x2000: 'project', 0x4000: 'shared_blocks', 0x8000: 'verity', 0x10000: 'orphan_present',
};

function u16(b: Uint8Array, off: number, what: string): number {
  if (off < 0 || off + 2 > b.length) throw new Ext4FormatError(`${what} lies outside its ${b.length}-byte buffer`, off);
  return b[off]! | (b[off + 1]! << 8);
}

function u32(b: Uint8Array, off: number, what: string): number {
  if (off < 0 || off + 4 > b.length) throw new Ext4FormatError(`${what} lies outside its ${b.length}-byte buffer`, off);
  return (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16)) + b[off + 3]! * 0x1000000;
}

function s32(b: Uint8Array, off: number, what: string): number {
  const v = u32(b, off, what);
  return v >= 0x80000000 ? v - 0x100000000 : v;
}

/** The superblock facts the file side needs (names as in struct ext4_super_block). */
export interface Superblock {
  s_inodes_count: number;
  s_blocks_count: number;
  s_first_data_block: number;
  s_log_block_size: number;
  s_blocks_per_group: number;
  s_inodes_per_group: number;
  s_state: number;
  s_rev_level: number;
  s_inode_size: number;
  s_feature_compat: number;
  s_feature_incompat: number;
  s_feature_ro_compat: number;
  s_desc_size: number;
  s_first_meta_bg: number;
  blockSize: number;
  descSize: number;
  groupCount: number;
}

/** Parse the 1024-byte primary superblock (the bytes at offset 1024 of the filesystem). */
export function parseSuperblock(sb: Uint8Array): Superblock {
  if (sb.length < SUPERBLOCK_SIZE) throw new Ext4FormatError(`superblock is ${sb.length} bytes, want ${SUPERBLOCK_SIZE}`, SUPERBLOCK_OFFSET);
  const magic = u16(sb, 0x38, 's_magic');
  if (magic !== EXT4_SUPER_MAGIC) {
    throw new Ext4FormatError(`no ext2/3/4 superblock (s_magic 0x${magic.toString(16)}, want 0xef53)`, SUPERBLOCK_OFFSET + 0x38);
  }
  const s_log_block_size = u32(sb, 0x18, 's_log_block_size');
  if (s_log_block_size > 6) throw new Ext4FormatError(`absurd s_log_block_size ${s_log_block_size}`, SUPERBLOCK_OFFSET + 0x18);
  const blockSize = 1024 << s_log_block_size;
  const s_feature_incompat = u32(sb, 0x60, 's_feature_incompat');
  const s_desc_size = u16(sb, 0xfe, 's_desc_size');
  const descSize = s_feature_incompat & INCOMPAT_64BIT ? s_desc_size : 32;
  if (descSize < 32 || descSize > 1024 || (descSize & (descSize - 1)) !== 0) {
    throw new Ext4FormatError(`bad group descriptor size ${descSize}`, SUPERBLOCK_OFFSET + 0xfe);
  }
  const s_rev_level = u32(sb, 0x4c, 's_rev_level');
  const s_inode_size = s_rev_level === 0 ? 128 : u16(sb, 0x58, 's_inode_size');
  if (s_inode_size < 128 || s_inode_size > blockSize || (s_inode_size & (s_inode_size - 1)) !== 0) {
    throw new Ext4FormatError(`bad s_inode_size ${s_inode_size}`, SUPERBLOCK_OFFSET + 0x58);
  }
  const s_blocks_count = u32(sb, 0x4, 's_blocks_count_lo') + (s_feature_incompat & INCOMPAT_64BIT ? u32(sb, 0x150, 's_blocks_count_hi') * 2 ** 32 : 0);
  const s_first_data_block = u32(sb, 0x14, 's_first_data_block');
  const s_blocks_per_group = u32(sb, 0x20, 's_blocks_per_group');
  const s_inodes_per_group = u32(sb, 0x28, 's_inodes_per_group');
  if (s_blocks_per_group === 0 || s_inodes_per_group === 0) throw new Ext4FormatError('zero blocks or inodes per group', SUPERBLOCK_OFFSET + 0x20);
  const groupCount = Math.ceil((s_blocks_count - s_first_data_block) / s_blocks_per_group);
  return {
    s_inodes_count: u32(sb, 0x0, 's_inodes_count'),
    s_blocks_count,
    s_first_data_block,
    s_log_block_size,
    s_blocks_per_group,
    s_inodes_per_group,
    s_state: u16(sb, 0x3a, 's_state'),
    s_rev_level,
    s_inode_size,
    s_feature_compat: u32(sb, 0x5c, 's_feature_compat'),
    s_feature_incompat,
    s_feature_ro_compat: u32(sb, 0x64, 's_feature_ro_compat'),
    s_desc_size,
    s_first_meta_bg: u32(sb, 0x104, 's_first_meta_bg'),
    blockSize,
    descSize,
    groupCount,
  };
}

/** metadata_csum superblock checksum: crc32c(~0) over the first 1020 bytes, stored raw in s_checksum (0x3FC). */
export function superblockChecksum(sb: Uint8Array): number {
  return crc32cRaw(0xffffffff, sb.subarray(0, 0x3fc));
}

export interface MaskedSuperblock {
  /** The superblock as libext2fs is shown it. */
  bytes: Uint8Array;
  /** ro_compat bits cleared (0 when none). */
  maskedRoCompat: number;
  /** incompat bits cleared (MMP only: its open would write the MMP block). */
  maskedIncompat: number;
}

/**
 * The superblock a read-only libext2fs mount should see: ro_compat bits libext2fs 1.44 does not know are cleared (it
 * refuses a read-write open with them; by definition they only matter to writers, and we never write), MMP is
 * cleared (opening would write the MMP block), and s_checksum is recomputed when metadata_csum is on.
 * A copy: the image is never touched.
 */
export function maskSuperblock(raw: Uint8Array): MaskedSuperblock {
  const sb = parseSuperblock(raw);
  const maskedRoCompat = sb.s_feature_ro_compat & ~RO_COMPAT_LIBEXT2FS_SUPP;
  const maskedIncompat = sb.s_feature_incompat & INCOMPAT_MMP;
  if (maskedRoCompat === 0 && maskedIncompat === 0) return { bytes: raw, maskedRoCompat, maskedIncompat };
  const bytes = Uint8Array.from(raw.subarray(0, SUPERBLOCK_SIZE));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  view.setUint32(0x64, (sb.s_feature_ro_compat & ~maskedRoCompat) >>> 0, true);
  view.setUint32(0x60, (sb.s_feature_incompat & ~maskedIncompat) >>> 0, true);
  if (sb.s_feature_ro_compat & RO_COMPAT_METADATA_CSUM) view.setUint32(0x3fc, superblockChecksum(bytes), true);
  return { bytes, maskedRoCompat, maskedIncompat };
}

export function featureNames(bits: number, names: Record<number, string>): string[] {
  const out: string[] = [];
  for (let bit = 1; bit !== 0 && bit <= 0x80000000; bit = bit === 0x80000000 ? 0 : bit * 2) {
    if (bits & bit) out.push(names[bit] ?? `0x${bit.toString(16)}`);
  }
  return out;
}

function isPowerOf(n: number, base: number): boolean {
  let p = base;
  while (p < n) p *= base;
  return p === n;
}

/** Whether group g carries a superblock backup (and so, under meta_bg, shifts its descriptor block by one). */
function groupHasSuper(sb: Superblock, g: number): boolean {
  if (g === 0) return true;
  if (!(sb.s_feature_ro_compat & RO_COMPAT_SPARSE_SUPER)) return true;
  if (sb.s_feature_compat & COMPAT_SPARSE_SUPER2) return false; // backups listed in s_backup_bgs; descriptors unaffected below first_meta_bg
  return g === 1 || isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7);
}

/** Byte offset (from the start of the filesystem) of group g's descriptor, with or without meta_bg. */
export function groupDescriptorOffset(sb: Superblock, g: number): number {
  if (g < 0 || g >= sb.groupCount) throw new Ext4FormatError(`group ${g} beyond the ${sb.groupCount} groups`);
  const perBlock = sb.blockSize / sb.descSize;
  const metaGroup = Math.floor(g / perBlock);
  let block: number;
  if (sb.s_feature_incompat & INCOMPAT_META_BG && metaGroup >= sb.s_first_meta_bg) {
    const first = metaGroup * perBlock;
    block = sb.s_first_data_block + first * sb.s_blocks_per_group + (groupHasSuper(sb, first) ? 1 : 0);
  } else {
    block = sb.s_first_data_block + 1 + metaGroup;
  }
  return block * sb.blockSize + (g % perBlock) * sb.descSize;
}

/** bg_inode_table (lo, and hi when the descriptor is 64 bytes) from one group descriptor. */
export function inodeTableBlock(sb: Superblock, desc: Uint8Array): number {
  const lo = u32(desc, 0x8, 'bg_inode_table_lo');
  const hi = sb.descSize >= 64 ? u32(desc, 0x28, 'bg_inode_table_hi') : 0;
  return lo + hi * 2 ** 32;
}

export const S_IFMT = 0o170000;
export const S_IFLNK = 0o120000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const EXT4_EXTENTS_FL = 0x80000;
export const EXT4_INLINE_DATA_FL = 0x10000000;
const EXT4_HUGE_FILE_FL = 0x40000;
const EMPTY = new Uint8Array(0);

export interface Timestamp {
  /** Seconds since the epoch (40-bit with the extra epoch bits). */
  sec: number;
  /** Nanoseconds, when the inode has the _extra field; else 0. */
  nsec: number;
}

/** struct ext4_inode, decoded. */
export interface Inode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  links: number;
  /** 512-byte units, as st_blocks. */
  blocks: number;
  flags: number;
  atime: Timestamp;
  mtime: Timestamp;
  ctime: Timestamp;
  /** i_crtime: only when the inode is large enough to hold it. */
  crtime: Timestamp | null;
  dtime: number;
  generation: number;
  /** i_block for symlinks (a fast symlink's target lives there); empty for other types. */
  iBlock: Uint8Array;
}

function decodeTime(raw: Uint8Array, secOff: number, extraOff: number | null, what: string): Timestamp {
  let sec = s32(raw, secOff, what);
  let nsec = 0;
  if (extraOff !== null) {
    const extra = u32(raw, extraOff, `${what}_extra`);
    sec += (extra & 3) * 2 ** 32; // epoch bits extend the signed 32-bit seconds
    nsec = Math.floor(extra / 4);
    if (nsec > 999_999_999) nsec = 0;
  }
  return { sec, nsec };
}

/** Decode one on-disk inode (s_inode_size bytes). */
export function parseInode(sb: Superblock, ino: number, raw: Uint8Array): Inode {
  if (raw.length < 128) throw new Ext4FormatError(`inode ${ino} record is ${raw.length} bytes`);
  const extraIsize = raw.length > 128 ? u16(raw, 0x80, 'i_extra_isize') : 0;
  // An _extra field exists when i_extra_isize reaches past it (offsets relative to 0x80).
  const has = (fieldEnd: number): boolean => extraIsize > 0 && 0x80 + extraIsize >= fieldEnd && fieldEnd <= raw.length;
  const flags = u32(raw, 0x20, 'i_flags');
  const mode = u16(raw, 0x0, 'i_mode');
  const blocksLo = u32(raw, 0x1c, 'i_blocks_lo');
  const blocksHi = u16(raw, 0x74, 'l_i_blocks_high');
  let blocks = blocksLo + blocksHi * 2 ** 32;
  if (sb.s_feature_ro_compat & RO_COMPAT_HUGE_FILE && flags & EXT4_HUGE_FILE_FL) blocks *= sb.blockSize / 512;
  return {
    ino,
    mode,
    uid: u16(raw, 0x2, 'i_uid') + u16(raw, 0x78, 'l_i_uid_high') * 0x10000,
    gid: u16(raw, 0x18, 'i_gid') + u16(raw, 0x7a, 'l_i_gid_high') * 0x10000,
    size: u32(raw, 0x4, 'i_size_lo') + u32(raw, 0x6c, 'i_size_high') * 2 ** 32,
    links: u16(raw, 0x1a, 'i_links_count'),
    blocks,
    flags,
    atime: decodeTime(raw, 0x8, has(0x90) ? 0x8c : null, 'i_atime'),
    ctime: decodeTime(raw, 0xc, has(0x88) ? 0x84 : null, 'i_ctime'),
    mtime: decodeTime(raw, 0x10, has(0x8c) ? 0x88 : null, 'i_mtime'),
    crtime: has(0x98) ? decodeTime(raw, 0x90, 0x94, 'i_crtime') : null,
    dtime: u32(raw, 0x14, 'i_dtime'),
    generation: u32(raw, 0x64, 'i_generation'),
    iBlock: (mode & S_IFMT) === S_IFLNK ? raw.slice(0x28, 0x28 + 60) : EMPTY,
  };
}

/**
 * The numbers of one inode straight into `a` at `o` (the 16-field order of protocol.ts PACKED_STAT_FIELDS), without
 * building objects or closures: a listing decodes tens of thousands of inodes, mostly before the JIT warms up.
 * The record is `buf[at, at + size)`. Same rules as parseInode. Returns i_mode.
 */
export function packInodeFields(sb: Superblock, ino: number, buf: Buffer, at: number, size: number, a: Float64Array, o: number): number {
  if (size < 128 || at < 0 || at + size > buf.length) throw new Ext4FormatError(`inode ${ino} record lies outside its buffer`);
  const extraIsize = size >= 0x82 ? buf.readUInt16LE(at + 0x80) : 0;
  const limit = extraIsize > 0 ? Math.min(0x80 + extraIsize, size) : 0; // _extra fields end at or before this
  const mode = buf.readUInt16LE(at);
  const flags = buf.readUInt32LE(at + 0x20);
  let blocks = buf.readUInt32LE(at + 0x1c) + buf.readUInt16LE(at + 0x74) * 2 ** 32;
  if (sb.s_feature_ro_compat & RO_COMPAT_HUGE_FILE && flags & EXT4_HUGE_FILE_FL) blocks *= sb.blockSize / 512;
  a[o] = ino;
  a[o + 1] = mode;
  a[o + 2] = buf.readUInt16LE(at + 0x1a);
  a[o + 3] = buf.readUInt16LE(at + 0x2) + buf.readUInt16LE(at + 0x78) * 0x10000;
  a[o + 4] = buf.readUInt16LE(at + 0x18) + buf.readUInt16LE(at + 0x7a) * 0x10000;
  a[o + 5] = buf.readUInt32LE(at + 0x4) + buf.readUInt32LE(at + 0x6c) * 2 ** 32;
  a[o + 6] = blocks;
  a[o + 7] = flags;
  // [seconds offset, _extra offset, end of _extra] for atime, mtime, ctime, crtime.
  for (let k = 0; k < 4; k++) {
    const secOff = k === 0 ? 0x8 : k === 1 ? 0x10 : k === 2 ? 0xc : 0x90;
    const extraOff = k === 0 ? 0x8c : k === 1 ? 0x88 : k === 2 ? 0x84 : 0x94;
    const slot = o + 8 + 2 * k;
    if (k === 3 && limit < 0x98) {
      a[slot] = NaN;
      a[slot + 1] = NaN;
      continue;
    }
    let sec = buf.readInt32LE(at + secOff);
    let nsec = 0;
    if (limit >= extraOff + 4) {
      const extra = buf.readUInt32LE(at + extraOff);
      sec += (extra & 3) * 2 ** 32;
      nsec = Math.floor(extra / 4);
      if (nsec > 999_999_999) nsec = 0;
    }
    a[slot] = sec;
    a[slot + 1] = nsec;
  }
  return mode;
}

/** A fast symlink keeps its target in i_block (no extents, no inline data, shorter than 60 bytes). */
export function fastSymlinkTarget(inode: Inode): Uint8Array | null {
  if ((inode.mode & S_IFMT) !== S_IFLNK) return null;
  if (inode.flags & (EXT4_EXTENTS_FL | EXT4_INLINE_DATA_FL)) return null;
  if (inode.size >= 60) return null;
  return inode.iBlock.subarray(0, inode.size);
}

/**
 * Where a slow symlink keeps its target: the first data block, from the extent root in i_block (depth 0, as ext4
 * writes for a target of at most one block) or from the first direct block pointer. Returns the block number.
 */
export function symlinkDataBlock(inode: Inode): number {
  const b = inode.iBlock;
  if (inode.flags & EXT4_EXTENTS_FL) {
    if (u16(b, 0, 'eh_magic') !== 0xf30a) throw new Ext4FormatError(`symlink inode ${inode.ino}: bad extent header magic`);
    const entries = u16(b, 2, 'eh_entries');
    const depth = u16(b, 6, 'eh_depth');
    if (entries < 1 || depth !== 0) throw new Ext4FormatError(`symlink inode ${inode.ino}: unexpected extent tree (entries ${entries}, depth ${depth})`);
    return u32(b, 20, 'ee_start_lo') + u16(b, 18, 'ee_start_hi') * 2 ** 32;
  }
  if (inode.flags & EXT4_INLINE_DATA_FL) throw new Ext4FormatError(`symlink inode ${inode.ino}: inline-data symlinks are not supported`);
  return u32(b, 0, 'i_block[0]');
}

/** One linear directory entry (struct ext4_dir_entry_2). */
export interface Dirent {
  inode: number;
  /** EXT4_FT_*: 1 reg, 2 dir, 3 chr, 4 blk, 5 fifo, 6 sock, 7 symlink; 0 unknown. */
  fileType: number;
  /** UTF-8 decoded (invalid bytes become U+FFFD). */
  name: string;
}

/**
 * Parse directory bytes as a run of ext4_dir_entry_2 records. Skips unused records (inode 0): these also cover
 * htree interior nodes and the metadata_csum tail, which are designed to look empty to a linear reader.
 * `blockSize` bounds each record to its block; `maxEntries` bounds the work.
 */
export function parseDirents(data: Buffer, blockSize: number, maxEntries: number, out: Dirent[], base = 0): void {
  let off = 0;
  while (off + 8 <= data.length) {
    const inode = u32(data, off, 'inode');
    const recLen = u16(data, off + 4, 'rec_len');
    const nameLen = data[off + 6]!;
    const fileType = data[off + 7]!;
    // rec_len 0 or 65535 with a 64 KiB block means "whole block" (ext4_rec_len_from_disk).
    const len = recLen === 0 || recLen === 65535 ? Math.min(blockSize, 65536) : recLen;
    const blockEnd = (Math.floor(off / blockSize) + 1) * blockSize;
    if (len < 8 || len % 4 !== 0 || off + len > Math.min(blockEnd, data.length) || 8 + nameLen > len) {
      throw new Ext4FormatError(`corrupt directory entry (rec_len ${recLen}, name_len ${nameLen})`, base + off);
    }
    if (inode !== 0 && nameLen > 0) {
      if (out.length >= maxEntries) throw new Ext4FormatError(`directory has more than ${maxEntries} entries`, base + off);
      out.push({ inode, fileType, name: data.toString('utf8', off + 8, off + 8 + nameLen) });
    }
    off += len;
  }
}

/**
 * An inline_data directory as ext2fs_file_read returns it: i_block (4-byte parent inode, then entries in the
 * remaining 56 bytes) followed by the system.data extended attribute (more entries). "." and ".." are implicit.
 */
export function parseInlineDirents(ino: number, data: Buffer, maxEntries: number, out: Dirent[]): void {
  const parent = u32(data, 0, 'inline parent inode');
  out.push({ inode: ino, fileType: 2, name: '.' });
  out.push({ inode: parent, fileType: 2, name: '..' });
  const first = data.subarray(4, Math.min(60, data.length));
  parseDirents(first, first.length, maxEntries, out, 4);
  if (data.length > 60) {
    const rest = data.subarray(60);
    parseDirents(rest, rest.length, maxEntries, out, 60);
  }
}
