// CLI output conventions (ARCHITECTURE.md "CLI conventions"): results on stdout, everything else on stderr.

import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import { ExitCode, NearfieldError, toNearfieldError } from '../errors.js';

export interface OutputOptions {
  json?: boolean;
  jsonl?: boolean;
  quiet?: boolean;
}

/** True when stderr is a terminal and the user has not asked for quiet: progress and chatter allowed. */
export function chatty(opts: OutputOptions): boolean {
  return !opts.quiet && process.stderr.isTTY === true;
}

/** Colour only on a TTY and only when NO_COLOR is unset (https://no-color.org). */
export function colourAllowed(): boolean {
  return process.stdout.isTTY === true && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '');
}

/** JSON with bigints as hex strings for addresses and decimal strings for counters never needed: callers pick. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? jsonBigint(v) : v), 2);
}

/** Big values in JSON: numbers when exactly representable, decimal strings otherwise. Addresses are pre-rendered as hex by callers. */
function jsonBigint(v: bigint): number | string {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

export function printJson(value: unknown): void {
  process.stdout.write(toJson(value) + '\n');
}

export function printJsonl(records: Iterable<unknown>): void {
  for (const r of records) {
    process.stdout.write(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? jsonBigint(v) : v)) + '\n');
  }
}

/** A plain table in the style of the classic tools: no box-drawing borders, left-aligned text, right-aligned numbers. */
export function renderTable(head: string[], rows: (string | number | null | undefined)[][], rightAlign: boolean[] = []): string {
  // cli-table3 (and its string-width helpers) is loaded on first use: JSON output never pays for it.
  const Table = createRequire(import.meta.url)('cli-table3') as typeof TableType;
  const table = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '',
      bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '',
      right: '', 'right-mid': '', middle: ' ',
    },
    style: { head: colourAllowed() ? ['bold'] : [], border: [], 'padding-left': 0, 'padding-right': 1 },
    colAligns: head.map((_, i) => (rightAlign[i] ? 'right' : 'left')),
  });
  for (const row of rows) table.push(row.map((c) => (c === null || c === undefined ? '-' : String(c))));
  return table.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

export function printTable(head: string[], rows: (string | number | null | undefined)[][], rightAlign: boolean[] = []): void {
  process.stdout.write(renderTable(head, rows, rightAlign) + '\n');
}

/** Warnings go to stderr always (they change the exit code to 3); `--quiet` mutes only chatter. */
export function warn(message: string): void {
  process.stderr.write(`nearfield: warning: ${message}\n`);
}

export function info(opts: OutputOptions, message: string): void {
  if (chatty(opts)) process.stderr.write(`${message}\n`);
}

/** Wrap a command action: map errors to one line on stderr and the right exit code. */
export function action<A extends unknown[]>(what: string, fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      process.exitCode = typeof code === 'number' ? code : ExitCode.ok;
    } catch (e) {
      const err = toNearfieldError(e);
      process.stderr.write(err.format(what) + '\n');
      if (err.code === 'INTERNAL' && process.env.NEARFIELD_DEBUG) process.stderr.write(String((e as Error).stack) + '\n');
      process.exitCode = err.exitCode;
    }
  };
}

export { NearfieldError };
