// dmesg from the printk ring buffer vs the records the guest read from /dev/kmsg (truth.json), on ram.raw and core.elf.

import { beforeAll, describe, expect, it } from 'vitest';
import { json, readTruth, run, sample, type Truth } from './walkers-helpers.js';

let truth: Truth;
let files: Record<string, string>;

beforeAll(async () => {
  const s = await sample();
  truth = readTruth(s);
  files = { 'ram.raw': s.ram, 'core.elf': s.core };
});

/** /dev/kmsg escapes bytes below space, from 127 up, and the backslash as \xNN (kernel/printk/printk.c). */
const kmsgEscape = (s: string) => s.replace(/[\x00-\x1f\x7f-\xff\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

describe.each(['ram.raw', 'core.elf'])('dmesg on %s', (name) => {
  it('has every record the guest read from /dev/kmsg: seq, time, level, facility, flag, text and dict identical', () => {
    const ours = json<{ records: Truth[]; warnings: string[] }>('dmesg', files[name]!);
    expect(ours.warnings).toEqual([]);
    const bySeq = new Map(ours.records.map((r) => [r.seq, r]));
    expect(truth.dmesg.length).toBeGreaterThan(50);
    for (const t of truth.dmesg) {
      const o = bySeq.get(t.seq);
      expect(o, `seq ${t.seq}`).toBeDefined();
      // /dev/kmsg's flag is 'c' for LOG_CONT (8), '-' otherwise; its dictionary carries SUBSYSTEM= and DEVICE=
      const dict = [...(o.subsystem ? [`SUBSYSTEM=${o.subsystem}`] : []), ...(o.device ? [`DEVICE=${o.device}`] : [])];
      expect({ ts: o.tsUsec, level: o.level, facility: o.facility, flags: o.flags & 8 ? 'c' : '-', text: kmsgEscape(o.text), dict: dict.map(kmsgEscape) }, `seq ${t.seq}`)
        .toEqual({ ts: t.ts_usec, level: t.level, facility: t.facility, flags: t.flags, text: t.text, dict: t.dict });
    }
    // and nothing is missing in between: sequence numbers are contiguous
    const seqs = ours.records.map((r) => r.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i));
  });
});

describe('dmesg CLI', () => {
  it('prints util-linux style lines and filters by level', () => {
    const r = run(['dmesg', '--ram', files['ram.raw']!, '--level', 'notice']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    const notices = truth.dmesg.filter((d: Truth) => d.level === 5);
    expect(lines.length).toBeGreaterThanOrEqual(notices.length);
    for (const line of lines) expect(line).toMatch(/^(\[\s*\d+\.\d{6}\] | {15})/); // continuation lines are indented
    const last = notices.at(-1);
    expect(lines).toContain(`[${String(Math.floor(last.ts_usec / 1e6)).padStart(5)}.${String(last.ts_usec % 1e6).padStart(6, '0')}] ${last.text}`);
  });

  it('refuses an unknown level with a usage error', () => {
    const r = run(['dmesg', '--ram', files['ram.raw']!, '--level', 'loud']);
    expect(r.status).toBe(2);
  });
});
