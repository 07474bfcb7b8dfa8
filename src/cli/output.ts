// CLI output conventions (ARCHITECTURE.md "CLI conventions"): results on stdout, everything else on stderr.

import { fstatSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import type TableType from 'cli-table3';
import type * as Tty from 'node:tty';
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
  return isTerminal(1) && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '');
}

/** Whether `fd` is a terminal, asked without making process.stdout (see writeOut): only a character device can be
 *  one, so a pipe or a file never loads node:tty. */
function isTerminal(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice() && (createRequire(import.meta.url)('node:tty') as typeof Tty).isatty(fd);
  } catch {
    return false;
  }
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
  writeOut(toJson(value) + '\n');
}

export function printJsonl(records: Iterable<unknown>): void {
  for (const r of records) {
    // a reader that went away (`| head`) ends the command (see onStdoutError); stop producing lines for it
    if (stdoutClosed()) return;
    writeOut(JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? jsonBigint(v) : v)) + '\n');
  }
}

let stdoutGone = false;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Results to stdout, after any progress line on stderr was cleared (they often share a terminal). Written to fd 1
 * with write(2), whole, before returning: making process.stdout (a pipe's net.Socket and Node's stream modules)
 * was ~6 ms of a warm command that prints one table. A command that streams (cat) uses process.stdout instead,
 * and never both.
 */
export function writeOut(text: string): void {
  clearStatus();
  if (stdoutGone) return;
  const bytes = Buffer.from(text);
  for (let done = 0; done < bytes.length; ) {
    try {
      done += writeSync(1, bytes, done);
    } catch (e) {
      // fd 1 left non-blocking by whoever opened it: wait for the reader
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1);
        continue;
      }
      stdoutGone = true;
      onStdoutError(e as NodeJS.ErrnoException);
      return;
    }
  }
}

/** True once stdout's reader has gone (EPIPE). */
export function stdoutClosed(): boolean {
  return stdoutGone;
}

/** process.stdout's errors (a streaming command's reader going away) handled by onStdoutError, from the stream's
 *  first use: it is made only when a command needs it. */
export function handleStdoutErrorsOnUse(): void {
  const made = Object.getOwnPropertyDescriptor(process, 'stdout')?.get;
  if (!made) {
    process.stdout.on('error', onStdoutError);
    return;
  }
  Object.defineProperty(process, 'stdout', {
    configurable: true,
    enumerable: true,
    get() {
      const stream = made.call(process) as NodeJS.WriteStream;
      if (!stream.listeners('error').includes(onStdoutError)) stream.on('error', onStdoutError);
      return stream;
    },
  });
}

/**
 * What to do when stdout fails: a reader that closed the pipe (`nearfield ps --jsonl | head`) is not an
 * error: stop quietly with the exit code so far, like the classic tools. Any other write error is one line.
 */
export function onStdoutError(e: NodeJS.ErrnoException): void {
  if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') process.exit(typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok);
  clearStatus();
  process.stderr.write(`nearfield: cannot write the output: ${e.message}\n`);
  process.exit(ExitCode.failure);
}

// ---- stderr: one status line (a progress bar) that every other message clears first

let statusShown = false;

/** Draw a one-line status (progress) on a terminal's stderr, replacing the previous one. */
export function showStatus(opts: OutputOptions, text: string): void {
  if (!chatty(opts)) return;
  process.stderr.write(`\r\x1b[K${text}`);
  statusShown = true;
}

/** Erase the status line, so the next message or result starts on a clean line. */
export function clearStatus(): void {
  if (!statusShown) return;
  statusShown = false;
  process.stderr.write('\r\x1b[K');
}

/** A plain table in the style of the classic tools: no box-drawing borders, left-aligned text, right-aligned numbers. */
export function renderTable(head: string[], rows: (string | number | null | undefined)[][], rightAlign: boolean[] = []): string {
  const cells = rows.map((row) => row.map((c) => (c === null || c === undefined ? '-' : String(c))));
  return plainTable(head, cells, rightAlign) ?? cliTable3(head, cells, rightAlign);
}

/** Cells whose display width is their length: printable ASCII, one line. */
const plain = /^[\x20-\x7e]*$/;

/**
 * The common case drawn directly: every cell printable ASCII. The same bytes cli-table3 draws with the options
 * below (each column as wide as its widest cell, cells joined by two spaces, the header bold on a colour
 * terminal, lines trimmed), in a fraction of the time: cli-table3 measures every cell with string-width and
 * builds an object per cell, ~90 ms of a 200-process `ps` before this. null when a cell needs cli-table3
 * (wide or combining characters, escape sequences, several lines) or a row is not as long as the header.
 */
function plainTable(head: string[], rows: string[][], rightAlign: boolean[]): string | null {
  const table = [head, ...rows];
  const widths: number[] = [];
  for (const row of table) {
    if (row.length !== head.length) return null;
    for (let x = 0; x < row.length; x++) {
      const cell = row[x] as string;
      if (!plain.test(cell)) return null;
      if (cell.length > (widths[x] ?? 0)) widths[x] = cell.length;
    }
  }
  const bold = colourAllowed();
  const lines = table.map((row, y) => {
    let line = '';
    for (let x = 0; x < row.length; x++) {
      const cell = row[x] as string;
      const fill = ' '.repeat((widths[x] as number) - cell.length);
      const text = `${rightAlign[x] ? fill + cell : cell + fill} `;
      line += (x > 0 ? ' ' : '') + (y === 0 && bold ? `\x1b[1m${text}\x1b[22m` : text);
    }
    return line.trimEnd();
  });
  return lines.join('\n');
}

function cliTable3(head: string[], rows: string[][], rightAlign: boolean[]): string {
  // cli-table3 (and its string-width helpers) is loaded on first use: ASCII tables and JSON output never pay for it.
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
  for (const row of rows) table.push(row);
  return table.toString().split('\n').map((l) => l.trimEnd()).join('\n');
}

export function printTable(head: string[], rows: (string | number | null | undefined)[][], rightAlign: boolean[] = []): void {
  writeOut(renderTable(head, rows, rightAlign) + '\n');
}

/** Warnings go to stderr always (they change the exit code to 3); `--quiet` mutes only notes and chatter. */
export function warn(message: string): void {
  clearStatus();
  process.stderr.write(`nearfield: warning: ${message}\n`);
}

/** A note: something worth knowing that does not make the data partial (stale journal, a guessed mount
 *  point). On stderr unless `-q`. */
export function note(opts: OutputOptions, message: string): void {
  if (opts.quiet) return;
  clearStatus();
  process.stderr.write(`nearfield: note: ${message}\n`);
}

/** Chatter (what was written where): only on a terminal, and not with `-q`. */
export function info(opts: OutputOptions, message: string): void {
  if (!chatty(opts)) return;
  clearStatus();
  process.stderr.write(`${message}\n`);
}

/** Wrap a command action: map errors to one line on stderr and the right exit code. */
export function action<A extends unknown[]>(what: string, fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      process.exitCode = typeof code === 'number' ? code : ExitCode.ok;
    } catch (e) {
      const err = toNearfieldError(e);
      clearStatus();
      process.stderr.write(err.format(what) + '\n');
      if (err.code === 'INTERNAL' && process.env.NEARFIELD_DEBUG) process.stderr.write(String((e as Error).stack) + '\n');
      process.exitCode = err.exitCode;
    }
  };
}

export { NearfieldError };
