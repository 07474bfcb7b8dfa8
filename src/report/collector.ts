// The shape of a report collector: declared beside its command (`export const collectors` in
// src/cli/commands/*.ts), each filling sections of a VmReport and saying how they render as a table
// section, Prometheus metrics and vhostmd metrics. Adding a collector touches only the file that declares it.
// (collectors.ts finds them.)

import type { Guest } from '../guest.js';
import type { Disk } from '../disk.js';
import type { VmReport } from '../generated/records.js';
import type { Target } from '../target.js';

export type Sections = VmReport['sections'];

/** Reader handles a collector gets, and the report-wide options. */
export interface CollectContext {
  guest?: Guest;
  disk?: Disk;
  /** What is read (a live VM's pid and QMP socket, for the host tier). */
  target?: Target;
  /** Sections filled by the collectors that ran before this one. */
  sections: Sections;
  /** How many processes in each top list. */
  top: number;
}

export interface TableSection {
  title: string;
  body: string;
  /** Lines after the body (e.g. a filesystem's journal state). */
  notes?: string[];
}

export type Labels = Record<string, string>;

/** Metric sink: the renderer adds the vm (and instance) labels and groups samples by family. */
export interface MetricSink {
  gauge(name: string, help: string, value: number | null | undefined, labels?: Labels): void;
  counter(name: string, help: string, value: number | null | undefined, labels?: Labels): void;
}

export type VhostmdType = 'int32' | 'uint32' | 'int64' | 'uint64' | 'real32' | 'real64' | 'string';

/** vhostmd sink: one <metric type context="vm"> per call. */
export type VhostmdSink = (type: VhostmdType, name: string, value: string | number | null | undefined) => void;

export interface Collector {
  /** Its name in `nearfield_collector_success{collector}` and in the report's errors. */
  name: string;
  /** What it reads: the guest's RAM, its disk image, or the host's view of a live VM's VMM process. */
  needs: 'ram' | 'disk' | 'host';
  /** Position in the table (and the order collectors run: later ones see earlier sections). */
  order: number;
  /** Fill its sections (throws: the collector failed; the others still run). */
  collect(ctx: CollectContext): void | Promise<void>;
  table?(r: VmReport): TableSection | undefined;
  prometheus?(r: VmReport, m: MetricSink): void;
  vhostmd?(r: VmReport, emit: VhostmdSink): void;
}

export function defineCollector(c: Collector): Collector {
  return c;
}
