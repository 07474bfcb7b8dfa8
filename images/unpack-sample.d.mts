// unpack-sample.d.mts — types for unpack-sample.mjs, so TypeScript tests can import it.

export interface SamplePaths {
  /** images/.cache/sample, holding every file below */
  dir: string;
  /** guest RAM as QEMU's memory-backend-file (file offset = GPA for this 256 MiB pc guest) */
  ram: string;
  /** QEMU dump-guest-memory ELF core (with a VMCOREINFO note) */
  core: string;
  /** the guest's ext4 root filesystem image */
  disk: string;
  /** the in-guest ground truth, parsed (see images/README.md) */
  truth: string;
  /** how the sample was built, with every file's sha256 */
  manifest: string;
  /** the guest's console */
  serial: string;
}

export declare const SAMPLE_DIR: string;
export declare const CACHE_DIR: string;
/** Unpacks images/sample/sample.tar.zst on first use (atomic, sha256-verified) and returns the paths. */
export declare function samplePaths(): Promise<SamplePaths>;
