// `nearfield ls [-l] [-a] [-d] [-n] [-h] [PATH…] [target]`: list guest directories from the disk image, like ls.
// The last argument is the target only when there are several and it is a snapshot directory on the host.

import type { StatRecord } from '../../../wasm/protocol.js';
import { SCHEMA_VERSION, type FileEntry, type LsDocument } from '../../generated/records.js';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { NearfieldError } from '../../errors.js';
import { isSnapshotDir } from '../../target.js';
import { humanSize } from '../../report/units.js';
import { defineCommand } from '../define.js';
import { printJson, printJsonl, writeOut } from '../output.js';
import {
  byName, fileAction, guestPath, jsonTime, loadIdNames, lsTime, modeString, octalMode, withGuestFiles, type IdNames,
} from '../files-common.js';

interface LsOptions extends CommonOptions {
  long?: boolean;
  all?: boolean;
  directory?: boolean;
  numericUidGid?: boolean;
  humanReadable?: boolean;
}

export function lsRecord(r: StatRecord, ids: IdNames | undefined): FileEntry {
  return {
    name: r.name,
    path: r.path,
    ino: r.ino,
    type: r.type,
    mode: octalMode(r.mode),
    modeString: modeString(r),
    links: r.links,
    uid: r.uid,
    user: ids?.user(r.uid) ?? null,
    gid: r.gid,
    group: ids?.group(r.gid) ?? null,
    sizeBytes: r.size,
    mtime: jsonTime(r.mtime),
    ...(r.target !== undefined ? { target: r.target } : {}),
  };
}

/** ls -l lines with columns padded to the widest entry, as ls does (-h: sizes as coreutils' human_readable). */
export function renderLong(entries: StatRecord[], ids: IdNames | undefined, numeric: boolean, human = false): string {
  const rows = entries.map((r) => [
    modeString(r),
    String(r.links),
    (numeric ? undefined : ids?.user(r.uid)) ?? String(r.uid),
    (numeric ? undefined : ids?.group(r.gid)) ?? String(r.gid),
    r.type === 'chr' || r.type === 'blk' ? '?' : human ? humanSize(BigInt(r.size)) : String(r.size),
    lsTime(r.mtime),
    r.target !== undefined ? `${r.name} -> ${r.target}` : r.name,
  ]);
  const width = [1, 2, 3, 4].map((c) => rows.reduce((w, row) => Math.max(w, row[c]!.length), 0));
  let out = '';
  for (const row of rows) {
    out += `${row[0]} ${row[1]!.padStart(width[0]!)} ${row[2]!.padEnd(width[1]!)} ${row[3]!.padEnd(width[2]!)} ${row[4]!.padStart(width[3]!)} ${row[5]} ${row[6]}\n`;
  }
  return out;
}

/** `ls /etc /var`: guest paths, and a target only as a last argument that is a snapshot directory on the host. */
export function splitTarget(args: string[]): { paths: string[]; target: string | undefined } {
  const last = args[args.length - 1];
  if (args.length >= 2 && last !== undefined && isSnapshotDir(last)) return { paths: args.slice(0, -1), target: last };
  return { paths: args.length ? args : ['/'], target: undefined };
}

export const command = defineCommand({
  name: 'ls',
  description: "list directories of the guest's filesystem from its disk image (read-only, through libext2fs)",
  setup(cmd) {
    cmd
      .argument('[paths...]', 'guest paths (default /), then optionally a snapshot directory on the host')
      .option('-l, --long', 'long listing: mode, links, owner, group, size, mtime (UTC), name, symlink target')
      .option('-a, --all', 'include entries whose names start with "."')
      .option('-d, --directory', 'list the directory itself, not its contents')
      .option('-h, --human-readable', 'with -l, sizes like 1.5K 234M 2.0G (powers of 1024, rounded up)')
      .option('-n, --numeric-uid-gid', 'numeric uid and gid (no names from the guest\'s /etc/passwd, /etc/group)');
    withFormats(withTarget(cmd, 'none')).action(
      fileAction('ls', (a: string[]) => (a.length === 1 ? a[0] : undefined), async (args: string[], opts: LsOptions) => {
        const { paths, target } = splitTarget(args);
        if (opts.json && paths.length > 1) throw new NearfieldError('USAGE', '--json lists one path; give one, or use --jsonl for the entries of several');
        const wantNames = (opts.long || opts.json || opts.jsonl) && !opts.numericUidGid;
        return withGuestFiles(target, opts, async (g) => {
          const ids = wantNames ? await loadIdNames(g) : undefined;
          // Like ls: files first, then each directory's entries under a "path:" heading when there are several.
          const files: StatRecord[] = [];
          const dirs: { arg: string; path: string; entries: StatRecord[] }[] = [];
          for (const arg of paths) {
            const path = guestPath(arg);
            const self = await g.lstat(path);
            // A symlink operand is followed to its directory unless -l or -d asks about the link itself.
            const followLink = self.type === 'symlink' && !opts.long && !opts.directory;
            if (opts.directory || (self.type !== 'dir' && !followLink)) {
              files.push({ ...self, name: arg });
              continue;
            }
            // Plain `ls` needs names only (the directory entries); -l and JSON need every inode.
            const withStat = !!(opts.long || opts.json || opts.jsonl);
            const listing = await g.readdir(path, { follow: true, withStat });
            const entries = listing.entries.filter((e) => opts.all || !e.name.startsWith('.'));
            entries.sort(byName);
            dirs.push({ arg, path, entries });
          }
          if (opts.json) {
            const only = dirs[0];
            printJson({ schemaVersion: SCHEMA_VERSION, path: only?.path ?? guestPath(paths[0]), entries: (only?.entries ?? files).map((e) => lsRecord(e, ids)) } satisfies LsDocument);
            return;
          }
          if (opts.jsonl) {
            printJsonl([...files, ...dirs.flatMap((d) => d.entries)].map((e) => lsRecord(e, ids)));
            return;
          }
          const show = (entries: StatRecord[]) =>
            opts.long ? renderLong(entries, ids, !!opts.numericUidGid, !!opts.humanReadable) : entries.map((e) => e.name + '\n').join('');
          const blocks: string[] = [];
          if (files.length) blocks.push(show(files));
          const headed = files.length > 0 || dirs.length > 1;
          for (const d of dirs) blocks.push((headed ? `${d.arg}:\n` : '') + show(d.entries));
          writeOut(blocks.join('\n'));
        });
      }),
    );
  },
});
