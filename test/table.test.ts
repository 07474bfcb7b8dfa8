// renderTable draws ASCII tables itself and hands anything else to cli-table3: both must give cli-table3's bytes
// for the options it is configured with (the look `ps`, `df`, `mount` and the report's sections have always had).

import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type TableType from 'cli-table3';
import { renderTable } from '../src/cli/output.js';

const Table = createRequire(import.meta.url)('cli-table3') as typeof TableType;

/** cli-table3 as nearfield has always configured it (no colour: stdout is not a terminal here). */
function reference(head: string[], rows: (string | number | null | undefined)[][], rightAlign: boolean[]): string {
  const t = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: ' ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 1 },
    colAligns: head.map((_, i) => (rightAlign[i] ? 'right' : 'left')),
  });
  for (const row of rows) t.push(row.map((c) => (c === null || c === undefined ? '-' : String(c))));
  return t.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

/** A small deterministic PRNG (xorshift32), so a failure names a reproducible case. */
function prng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('renderTable', () => {
  it('matches cli-table3 on the shapes the commands print', () => {
    const cases: [string[], (string | number | null | undefined)[][], boolean[]][] = [
      [['PID', 'STAT', 'CMD'], [[1, 'S', '/sbin/init'], [1234, 'R+', '[kworker/0:1H-events_highpri]']], [true, false, false]],
      [['', ''], [['hostname', 'nf-sample'], ['kernel', '6.1.0']], []], // uptime's section: an empty header line
      [['Mounted on', 'Type'], [], [false, false]], // header only
      [['A', 'B', 'C'], [['x', null, undefined], ['', '', '']], [false, true, false]],
      [['size'], [[0], [-1], [1.5], [12345678901234]], [true]],
      [['a', 'b'], [['only one'], ['x', 'y', 'extra']], [false, true]], // ragged rows
    ];
    for (const [head, rows, right] of cases) expect(renderTable(head, rows, right)).toBe(reference(head, rows, right));
  });

  it('matches cli-table3 on random printable-ASCII tables', () => {
    const rnd = prng(13);
    const word = (): string => Array.from({ length: Math.floor(rnd() * 12) }, () => String.fromCharCode(0x20 + Math.floor(rnd() * 95))).join('');
    for (let n = 0; n < 200; n++) {
      const cols = 1 + Math.floor(rnd() * 6);
      const head = Array.from({ length: cols }, word);
      const rows = Array.from({ length: Math.floor(rnd() * 8) }, () => Array.from({ length: cols }, () => (rnd() < 0.1 ? null : word())));
      const right = Array.from({ length: cols }, () => rnd() < 0.5);
      expect(renderTable(head, rows, right), `case ${n}`).toBe(reference(head, rows, right));
    }
  });

  it('gives cells that are not plain ASCII to cli-table3: wide and combining characters, several lines, escapes', () => {
    for (const cell of ['日本語', 'e\u0301t\u00e9', 'two\nlines', 'tab\there', '\x1b[31mred\x1b[0m', '😀 smile']) {
      const head = ['NAME', 'N'];
      const rows = [[cell, 1], ['plain', 22]];
      expect(renderTable(head, rows, [false, true]), JSON.stringify(cell)).toBe(reference(head, rows, [false, true]));
    }
  });
});
