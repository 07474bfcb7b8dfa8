// How a command is declared: `defineCommand` for any command, `defineRecordCommand` for one that reads a
// record (a walker's, a disk record) and prints it as JSON, JSON lines, a table from column specs, or text.
// Each file in src/cli/commands/ exports `command` (and maybe `collectors`); scripts/generate.mjs indexes them.

import type { Command } from 'commander';
import { resolveTarget, type Target } from '../target.js';
import { openTargetGuest, type Guest } from '../guest.js';
import { Disk } from '../disk.js';
import { ExitCode, NearfieldError } from '../errors.js';
import { withFormats, withTarget, type CommonOptions } from './common.js';
import { action, printJson, printJsonl, renderTable, warn, writeOut } from './output.js';
import { beginRead, consistencyLine, tornWarning } from '../live/read.js';

export interface CommandSpec {
  /** The command word; also the file name in src/cli/commands/ by convention. */
  name: string;
  aliases?: string[];
  description: string;
  /** Arguments, options and the action, on the commander Command made for it. */
  setup(cmd: Command): void;
}

export function defineCommand(spec: CommandSpec): CommandSpec {
  return spec;
}

/** Register a declared command on the program. */
export function registerCommand(program: Command, spec: CommandSpec): void {
  // -h is free for human-readable sizes, as in df, free and ls; help stays on --help.
  const cmd = program.command(spec.name).description(spec.description).helpOption('--help', 'display help for command');
  for (const a of spec.aliases ?? []) cmd.alias(a);
  spec.setup(cmd);
  oneLineUsageErrors(cmd, spec.name);
  for (const sub of cmd.commands) oneLineUsageErrors(sub.helpOption('--help', 'display help for command'), `${spec.name} ${sub.name()}`);
}

/** commander's usage errors in the house style: one line, `nearfield: CMD: what is wrong (see … --help)`
 *  (`name` '' for the program's own: an unknown command). */
export function oneLineUsageErrors(cmd: Command, name: string): void {
  const what = name ? `nearfield: ${name}: ` : 'nearfield: ';
  const help = name ? `nearfield ${name} --help` : 'nearfield --help';
  cmd.showHelpAfterError(false).configureOutput({
    writeErr: (s) => process.stderr.write(s),
    outputError: (s, write) => write(`${what}${s.trim().replace(/^error: /, '')} (see ${help})\n`),
  });
}

/** One table column: its header, the cell of a row, and right alignment for numbers. */
export interface Column<Row> {
  header: string;
  cell(row: Row): string | number | null | undefined;
  right?: boolean;
}

/** Print rows as a table with the classic tools' look (cli-table3, no borders); `headers` false leaves out the
 *  header line (ps -o pid= …). */
export function printColumns<Row>(columns: Column<Row>[], rows: Row[], headers = true): void {
  const table = renderTable(columns.map((c) => c.header), rows.map((r) => columns.map((c) => c.cell(r))), columns.map((c) => c.right === true));
  writeOut((headers ? table : table.split('\n').slice(1).join('\n')) + (headers || rows.length ? '\n' : ''));
}

/** What a record command reads from, opened on first use and closed when the command ends. */
export interface Sources {
  target: Target;
  guest(): Promise<Guest>;
  disk(): Disk;
}

export interface RecordCommandSpec<R, F, V, Row> {
  name: string;
  aliases?: string[];
  description: string;
  /** Extra arguments and flags. */
  flags?(cmd: Command): void;
  /** Arguments before the target, any number of them (`bt PID… [target]`): the command then takes `[args...]`,
   *  with this help line. */
  variadic?: string;
  /** Which of the positional words is the target (default: the last one given); the others reach `read` as its
   *  `args` (ps aux, pstree PID, pmap --all DIR, bt PID…). */
  target?(words: (string | undefined)[], flags: F): string | undefined;
  /** Usage checks on the flags, before anything is opened (a NearfieldError USAGE exits 2). */
  validate?(flags: F): void;
  /** The record `--json` prints: usually one walker's (`async (s) => (await s.guest()).meminfo()`). */
  read(sources: Sources, flags: F, args: string[]): Promise<R> | R;
  /** The record's items, one JSON line each for `--jsonl` (default: the whole record on one line). */
  items?(record: R, flags: F): unknown[];
  /** What the table or text is drawn from (default: the record), e.g. with the guest's clock for STIME. */
  view?(record: R, sources: Sources, flags: F): Promise<V> | V;
  /** Table rows and their column specs … */
  rows?(view: V, flags: F): Row[];
  columns?: Column<Row>[] | ((flags: F, view: V) => Column<Row>[]);
  /** Whether the table has a header line (default: yes). */
  headers?(flags: F, view: V): boolean;
  /** … or text, for the /proc-style commands (undefined: the table after all). */
  text?(view: V, flags: F): string | undefined;
  /** Warnings that make the exit code 3 (default: the record's `warnings`). */
  warnings?(record: R): string[];
}

function recordWarnings(record: unknown): string[] {
  const w = (record as { warnings?: unknown })?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}

/** A command that reads one record and prints it: `--json` the record itself (it carries schemaVersion),
 *  `--jsonl` its items, else a table from the column specs (or the spec's text). */
export function defineRecordCommand<R, F = object, V = R, Row = never>(spec: RecordCommandSpec<R, F, V, Row>): CommandSpec {
  return {
    name: spec.name,
    aliases: spec.aliases,
    description: spec.description,
    setup(cmd) {
      spec.flags?.(cmd);
      withFormats(withTarget(cmd, spec.variadic !== undefined));
      const variadic = cmd.registeredArguments.at(-1);
      if (spec.variadic && variadic) variadic.description = spec.variadic;
      cmd.action(
        action(spec.name, async (...args: unknown[]) => {
          // commander passes the declared arguments, then the options, then the Command
          const flags = args[args.length - 2] as F & CommonOptions & { json?: boolean; jsonl?: boolean };
          // commander gives a variadic argument as one array
          const words = (args.slice(0, -2) as (string | string[] | undefined)[]).flat();
          if (flags.json && flags.jsonl) throw new NearfieldError('USAGE', 'choose one of --json and --jsonl');
          const chosen = spec.target ? spec.target(words, flags) : words[words.length - 1];
          const at = chosen === undefined ? -1 : words.lastIndexOf(chosen);
          const rest = words.filter((w, i): w is string => w !== undefined && i !== at);
          spec.validate?.(flags);
          const target = await resolveTarget(chosen, flags, spec.name);
          const opened: { guest?: Guest; disk?: Disk } = {};
          const session = await beginRead(target);
          const sources: Sources = {
            target,
            guest: async () => {
              if (!opened.guest) {
                opened.guest = await openTargetGuest(target, flags);
                session.opened(opened.guest);
              }
              return opened.guest;
            },
            disk: () => {
              if (!target.disk) throw new NearfieldError('NOT_FOUND', 'the target has no disk image (give one with --disk IMAGE)', target.dir ?? target.ram);
              return (opened.disk ??= Disk.open(target.disk, { partition: target.partition }));
            },
          };
          try {
            const record = await spec.read(sources, flags, rest);
            // A live read says how it held together; what stayed torn is a warning in the record itself.
            const first = opened.guest?.takeConsistency();
            const torn = first && tornWarning(first);
            const recWarnings = (record as { warnings?: unknown })?.warnings;
            if (torn && Array.isArray(recWarnings)) recWarnings.push(torn);
            if (flags.json) printJson(record);
            else if (flags.jsonl) printJsonl(spec.items ? spec.items(record, flags) : [record]);
            else {
              const view = spec.view ? await spec.view(record, sources, flags) : (record as unknown as V);
              const text = spec.text?.(view, flags);
              if (text !== undefined) writeOut(text);
              else if (spec.rows && spec.columns) {
                printColumns(typeof spec.columns === 'function' ? spec.columns(flags, view) : spec.columns, spec.rows(view, flags), spec.headers?.(flags, view) ?? true);
              }
            }
            // a truncated RAM file makes every reader's output partial: say so whatever the command
            const warnings = [...new Set([...(spec.warnings ? spec.warnings(record) : recordWarnings(record)), ...(opened.guest?.damage() ?? [])])];
            if (torn && !warnings.includes(torn)) warnings.push(torn);
            const later = opened.guest?.takeConsistency();
            const laterTorn = later && tornWarning(later);
            if (laterTorn) warnings.push(laterTorn);
            for (const w of warnings) warn(w);
            if (first && (target.live || first.tornReads > 0)) {
              const all = { ...first, retries: first.retries + (later?.retries ?? 0), tornReads: first.tornReads + (later?.tornReads ?? 0) };
              process.stderr.write(`nearfield: ${consistencyLine(all, session.paused)}\n`);
            }
            return warnings.length ? ExitCode.partial : ExitCode.ok;
          } catch (e) {
            // a read that fell into the missing part of a truncated file: say that, not only the address
            const damage = opened.guest?.damage() ?? [];
            if (e instanceof NearfieldError && e.code === 'FAULT' && damage.length) throw new NearfieldError('FAULT', `${e.message}; ${damage.join('; ')}`, e.file, e.hint);
            throw e;
          } finally {
            opened.guest?.close();
            opened.disk?.close();
            await session.end();
          }
        }),
      );
    },
  };
}

/** Replace bytes ps would not print (control characters) with '?', as ps does. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}
