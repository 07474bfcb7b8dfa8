// Graphite's plaintext protocol (graphite docs "Feeding In Your Data": `path value timestamp\n` over TCP): the same
// metrics the Prometheus renderer writes, as nearfield.<vm>.<group>.<metric>[.<label values>], or with Graphite 1.1
// tags (`path;tag=value`). A client that reconnects with backoff and buffers a bounded number of lines.

import { createConnection, type Socket } from 'node:net';
import type { VmReport } from '../../generated/records.js';
import type { Collector, Labels, MetricSink } from '../collector.js';

export interface GraphiteOptions {
  /** Path prefix (default "nearfield"). */
  prefix?: string;
  /** Unix seconds for every line (default: each report's collectedAt). */
  timestamp?: number;
  /** Graphite 1.1 tags for labels instead of path components. */
  tags?: boolean;
}

/** A path component: anything but letters, digits, `_` and `-` becomes `_` (dots would make new levels). */
export function sanitize(s: string): string {
  const t = s.replace(/[^A-Za-z0-9_-]/g, '_');
  return t.length > 0 ? t : '_';
}

/** A tag value may hold anything but `;`, `~`, whitespace and must not be empty (Graphite 1.1 tagged series). */
function tagValue(s: string): string {
  const t = s.replace(/[;~\s!^=]/g, '_');
  return t.length > 0 ? t : '_';
}

/** The metric's name within its group: node_memory_MemFree_bytes in group "memory" → MemFree_bytes. */
function leaf(name: string, group: string): string {
  let n = name.replace(/^(node|nearfield|libvirt_domain)_/, '');
  if (n.startsWith(`${group}_`)) n = n.slice(group.length + 1);
  return n;
}

/** Every VM's metrics as Graphite plaintext lines. Groups are the collectors' names ("nearfield" for the report's own). */
export function renderGraphite(reports: VmReport[], collectors: Collector[], opts: GraphiteOptions = {}): string[] {
  const prefix = opts.prefix ?? 'nearfield';
  const lines: string[] = [];
  for (const r of reports) {
    const ts = opts.timestamp ?? Math.floor(Date.parse(r.collectedAt) / 1000);
    const sinkFor = (group: string): MetricSink => {
      const add = (name: string, _help: string, value: number | null | undefined, labels: Labels = {}) => {
        if (value === null || value === undefined || !Number.isFinite(value)) return;
        const entries = Object.entries(labels).filter(([k]) => k !== 'vm' && k !== 'instance' && k !== 'domain').sort(([a], [b]) => a.localeCompare(b));
        const base = [prefix, sanitize(r.vm), sanitize(group), sanitize(leaf(name, group))].join('.');
        const path = opts.tags
          ? base + entries.map(([k, v]) => `;${sanitize(k)}=${tagValue(v)}`).join('')
          : [base, ...entries.map(([, v]) => sanitize(v))].join('.');
        lines.push(`${path} ${Number.isInteger(value) ? value : value.toPrecision(12).replace(/\.?0+$/, '')} ${ts}`);
      };
      return { gauge: add, counter: add };
    };
    const own = sinkFor('nearfield');
    for (const c of collectors) own.gauge('nearfield_collector_success', '', r.errors.some((e) => e.collector === c.name) ? 0 : 1, { collector: c.name });
    own.gauge('nearfield_report_duration_seconds', '', r.durationMs / 1000);
    own.counter('nearfield_torn_reads_total', '', r.tornReads);
    own.counter('nearfield_read_retries_total', '', r.retries);
    own.gauge('nearfield_warnings', '', r.warnings.length);
    for (const c of collectors) c.prometheus?.(r, sinkFor(c.name));
  }
  return lines;
}

export interface GraphiteClientOptions {
  /** Most lines held while the server is unreachable; the oldest are dropped beyond it (default 100000). */
  maxBuffered?: number;
  /** First and largest reconnect delay (default 500 ms, 30 s). */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Told of each connect, disconnect and drop (a log line). */
  onEvent?: (message: string) => void;
}

/** A Graphite plaintext sender: buffers lines, connects (and reconnects with exponential backoff), writes in order. */
export class GraphiteClient {
  private buffer: string[] = [];
  private socket: Socket | undefined;
  private connected = false;
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Lines dropped because the buffer was full (oldest first). */
  dropped = 0;
  sent = 0;

  constructor(readonly host: string, readonly port: number, private readonly opts: GraphiteClientOptions = {}) {
    this.backoff = opts.minBackoffMs ?? 500;
  }

  /** Queue lines and send what can be sent. */
  send(lines: string[]): void {
    const max = this.opts.maxBuffered ?? 100_000;
    this.buffer.push(...lines);
    if (this.buffer.length > max) {
      const drop = this.buffer.length - max;
      this.buffer.splice(0, drop);
      this.dropped += drop;
      this.opts.onEvent?.(`graphite ${this.host}:${this.port}: buffer full, dropped the oldest ${drop} line(s) (${this.dropped} in all)`);
    }
    this.pump();
  }

  get buffered(): number {
    return this.buffer.length;
  }

  /** Resolve once everything queued is written (or reject after `timeoutMs`). */
  async flush(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length > 0 || (this.socket && this.socket.writableLength > 0)) {
      if (Date.now() > deadline) throw new Error(`graphite ${this.host}:${this.port}: ${this.buffer.length} line(s) not sent within ${timeoutMs} ms`);
      this.pump();
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.socket?.end();
    this.socket = undefined;
  }

  private pump(): void {
    if (this.closed) return;
    if (!this.socket) return this.connect();
    if (!this.connected || this.buffer.length === 0) return;
    const lines = this.buffer.splice(0, this.buffer.length);
    this.sent += lines.length;
    this.socket.write(lines.join('\n') + '\n');
  }

  private connect(): void {
    if (this.timer || this.closed) return;
    const s = createConnection({ host: this.host, port: this.port });
    this.socket = s;
    s.setNoDelay(true);
    s.on('connect', () => {
      this.connected = true;
      this.backoff = this.opts.minBackoffMs ?? 500;
      this.opts.onEvent?.(`graphite ${this.host}:${this.port}: connected`);
      this.pump();
    });
    s.on('error', () => { /* 'close' follows and schedules the reconnect */ });
    s.on('close', () => {
      const was = this.connected;
      this.connected = false;
      this.socket = undefined;
      if (this.closed) return;
      if (was) this.opts.onEvent?.(`graphite ${this.host}:${this.port}: disconnected, reconnecting`);
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.opts.maxBackoffMs ?? 30_000);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.connect();
      }, delay);
      this.timer.unref();
    });
  }
}

/** "HOST:PORT" (or "[v6]:PORT"). */
export function parseHostPort(spec: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(spec.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port >= 0 && port < 65536)) throw new Error(`${flag} takes HOST:PORT, not "${spec}"`);
  return { host: (m[1] ?? m[2]) as string, port };
}
