// `nearfield find [PATH] [--name GLOB] [--type f|d|l] [--max N] [target]`: a bounded find over the guest's filesystem.

import { InvalidArgumentError } from 'commander';
import type { FileType } from '../../../wasm/protocol.js';
import { SCHEMA_VERSION, type FindDocument } from '../../generated/records.js';
import { ExitCode } from '../../errors.js';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { defineCommand } from '../define.js';
import { printJson, printJsonl, writeOut, warn } from '../output.js';
import { fileAction, guestPath, withGuestFiles } from '../files-common.js';

interface FindOptions extends CommonOptions {
  name?: string;
  type?: FileType;
  max: number;
}

const types: Record<string, FileType> = { f: 'file', d: 'dir', l: 'symlink', c: 'chr', b: 'blk', p: 'fifo', s: 'sock' };

function parseType(v: string): FileType {
  const t = types[v];
  if (!t) throw new InvalidArgumentError('one of f, d, l, c, b, p, s');
  return t;
}

function parseMax(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}

export const command = defineCommand({
  name: 'find',
  description: "find files in the guest's filesystem by name and type (bounded; symlinks are not followed)",
  setup(cmd) {
    cmd
      .argument('[path]', 'guest directory to search from', '/')
      .option('--name <glob>', 'match entry names against a shell glob (*, ?, [...]), like find -name')
      .option('--type <t>', 'f file, d directory, l symlink (also c b p s)', parseType)
      .option('--max <n>', 'stop after this many matches', parseMax, 10_000);
    withFormats(withTarget(cmd)).action(
      fileAction('find', (p: string) => p, async (pathArg: string, positional: string | undefined, opts: FindOptions) => {
        const path = guestPath(pathArg);
        return withGuestFiles(positional, opts, async (g) => {
          const r = await g.find(path, { glob: opts.name, type: opts.type, max: opts.max });
          if (opts.json) printJson({ schemaVersion: SCHEMA_VERSION, path, name: opts.name ?? null, type: opts.type ?? null, truncated: r.truncated, matches: r.matches } satisfies FindDocument);
          else if (opts.jsonl) printJsonl(r.matches);
          else writeOut(r.matches.map((m) => m.path + '\n').join(''));
          if (r.truncated) {
            warn(`stopped after ${r.matches.length} matches (--max ${opts.max}); there may be more`);
            return ExitCode.partial;
          }
          return ExitCode.ok;
        });
      }),
    );
  },
});
