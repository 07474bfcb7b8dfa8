// The report model: what an in-guest agent would report about one VM, filled by collectors, read by renderers.

/** One process row in a "top" list. */
export interface ProcessRow {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
  uid: number | null;
  rssKib: number | null;
  cpuSeconds: number | null;
  threads: number | null;
  cmdline: string | null;
}

export interface FilesystemRow {
  /** The image (and partition) the filesystem lives on. */
  device: string;
  fstype: string;
  mountpoint: string;
  label: string | null;
  uuid: string | null;
  sizeBytes: number;
  freeBytes: number;
  availBytes: number;
  files: number;
  filesFree: number;
  blockSize: number;
  needsRecovery: boolean;
  lastWrite: string | null;
  /** Superblock free counts (stale on a live fs) vs. the group descriptors' sums that df uses. */
  superblockFreeBytes: number | null;
}

export interface VmReport {
  vm: string;
  target: { dir: string | null; ram: string | null; disk: string | null; sample: boolean };
  /** 'paused' when the snapshot manifest says the VM was paused for the copy; 'live' when it was not. */
  consistency: 'paused' | 'live' | 'unknown';
  collectedAt: string;
  durationMs: number;
  kernel?: {
    release: string | null;
    banner: string | null;
    buildId: string | null;
    kaslrOffset: string | null;
    pagingLevels: number | null;
    symbols: number | null;
    btfTypes: number | null;
  };
  uptime?: {
    uptimeSeconds: number;
    bootTimeSeconds: number | null;
    guestTimeSeconds: number | null;
    load1: number;
    load5: number;
    load15: number;
    runnable: number | null;
    threads: number | null;
    cpus: number | null;
    hostname: string | null;
    domainname: string | null;
    release: string | null;
    version: string | null;
    machine: string | null;
  };
  processes?: {
    total: number;
    threads: number;
    byState: Record<string, number>;
    topRss: ProcessRow[];
    topCpu: ProcessRow[];
  };
  /** /proc/meminfo fields as the guest prints them (kB for sizes, plain counts for HugePages_*). */
  memory?: { fields: Record<string, number> };
  buddy?: {
    zones: { node: number; zone: string; free: number[] }[];
    freePages: number;
    largestOrder: number | null;
    highOrderPercent: number;
  };
  filesystems?: FilesystemRow[];
  /** The newest kernel log lines (what a hung guest said last), and how many warnings or worse the log holds. */
  kernelLog?: { lines: { seconds: number; level: number; text: string }[]; errorsOrWorse: number; total: number };
  /** Soft problems: the data is there but partial or possibly stale. */
  warnings: string[];
  /** Collectors that failed, with why; the others still reported. */
  errors: { collector: string; message: string }[];
}

/** meminfo fields that are counts, not kB (printed without a unit by /proc/meminfo). */
export const meminfoCountFields = new Set(['HugePages_Total', 'HugePages_Free', 'HugePages_Rsvd', 'HugePages_Surp']);
