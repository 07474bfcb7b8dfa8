// How a command is declared: `defineCommand` for any command, `defineRecordCommand` for one that reads a
// record (a walker's, a disk record) and prints it as JSON, JSON lines, a table from column specs, or text.
// Each file in src/cli/commands/ exports `command` (and maybe `collectors`); scripts/generate.mjs indexes them.

import type { Command } from 'commander';
import { resolveTarget, type Target } from '../target.js';
import { openTargetGuest, type Guest } from '../guest.js';
import { Disk } from '../disk.js';
import { ExitCode, NearfieldError } from '../errors.js';
import { withFormats, withTarget, type CommonOptions } from './common.js';
import { action, printJson, printJsonl, printTable, warn } from './output.js';

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
}

/** One table column: its header, the cell of a row, and right alignment for numbers. */
export interface Column<Row> {
  header: string;
  cell(row: Row): string | number | null | undefined;
  right?: boolean;
}

/** Print rows as a table with the classic tools' look (cli-table3, no borders). */
export function printColumns<Row>(columns: Column<Row>[], rows: Row[]): void {
  printTable(columns.map((c) => c.header), rows.map((r) => columns.map((c) => c.cell(r))), columns.map((c) => c.right === true));
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
  /** Arguments before the target (e.g. `bt PID… [target]`): the command then takes `[args...]` and this picks
   *  the target out of them; the rest reach `read` as its `args`. */
  splitArgs?(args: string[]): { target?: string; args: string[] };
  /** With `splitArgs`: the help line for those arguments. */
  argsHelp?: string;
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
  /** … or text, for the /proc-style commands. */
  text?(view: V, flags: F): string;
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
      withFormats(withTarget(cmd, spec.splitArgs !== undefined));
      const variadic = cmd.registeredArguments.at(-1);
      if (spec.splitArgs && spec.argsHelp && variadic) variadic.description = spec.argsHelp;
      cmd.action(
        action(spec.name, async (...args: unknown[]) => {
          // commander passes the declared arguments, then the options, then the Command
          const flags = args[args.length - 2] as F & CommonOptions & { json?: boolean; jsonl?: boolean };
          let positionals = args.slice(0, -2) as (string | undefined)[];
          let targetArg = positionals[positionals.length - 1];
          if (spec.splitArgs) {
            const split = spec.splitArgs((positionals[0] as unknown as string[] | undefined) ?? []);
            targetArg = split.target;
            positionals = [...split.args, split.target];
          }
          if (flags.json && flags.jsonl) throw new NearfieldError('USAGE', 'choose one of --json and --jsonl');
          spec.validate?.(flags);
          const target = await resolveTarget(targetArg, flags);
          const opened: { guest?: Guest; disk?: Disk } = {};
          const sources: Sources = {
            target,
            guest: async () => (opened.guest ??= await openTargetGuest(target, flags)),
            disk: () => {
              if (!target.disk) throw new NearfieldError('NOT_FOUND', 'the target has no disk image (give one with --disk IMAGE)', target.dir ?? target.ram);
              return (opened.disk ??= Disk.open(target.disk, { partition: target.partition }));
            },
          };
          try {
            const record = await spec.read(sources, flags, positionals.slice(0, -1).filter((p): p is string => p !== undefined));
            if (flags.json) printJson(record);
            else if (flags.jsonl) printJsonl(spec.items ? spec.items(record, flags) : [record]);
            else {
              const view = spec.view ? await spec.view(record, sources, flags) : (record as unknown as V);
              if (spec.text) process.stdout.write(spec.text(view, flags));
              else if (spec.rows && spec.columns) {
                printColumns(typeof spec.columns === 'function' ? spec.columns(flags, view) : spec.columns, spec.rows(view, flags));
              }
            }
            const warnings = spec.warnings ? spec.warnings(record) : recordWarnings(record);
            for (const w of warnings) warn(w);
            return warnings.length ? ExitCode.partial : ExitCode.ok;
          } finally {
            opened.guest?.close();
            opened.disk?.close();
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
