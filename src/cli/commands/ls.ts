// `nearfield ls [-l] [-a] [-d] [-n] [PATH] [target]`: list a guest directory from the disk image, like ls.

import type { StatRecord } from '../../../wasm/protocol.js';
import { SCHEMA_VERSION, type FileEntry, type LsDocument } from '../../generated/records.js';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { defineCommand } from '../define.js';
import { printJson, printJsonl } from '../output.js';
import {
  byName, fileAction, guestPath, jsonTime, loadIdNames, lsTime, modeString, octalMode, withGuestFiles, type IdNames,
} from '../files-common.js';

interface LsOptions extends CommonOptions {
  long?: boolean;
  all?: boolean;
  directory?: boolean;
  numericUidGid?: boolean;
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

/** ls -l lines with columns padded to the widest entry, as ls does. */
export function renderLong(entries: StatRecord[], ids: IdNames | undefined, numeric: boolean): string {
  const rows = entries.map((r) => [
    modeString(r),
    String(r.links),
    (numeric ? undefined : ids?.user(r.uid)) ?? String(r.uid),
    (numeric ? undefined : ids?.group(r.gid)) ?? String(r.gid),
    r.type === 'chr' || r.type === 'blk' ? '?' : String(r.size),
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

export const command = defineCommand({
  name: 'ls',
  description: "list a directory of the guest's filesystem from its disk image (read-only, through libext2fs)",
  setup(cmd) {
    cmd
      .argument('[path]', 'guest path', '/')
      .option('-l, --long', 'long listing: mode, links, owner, group, size, mtime (UTC), name, symlink target')
      .option('-a, --all', 'include entries whose names start with "."')
      .option('-d, --directory', 'list the directory itself, not its contents')
      .option('-n, --numeric-uid-gid', 'numeric uid and gid (no names from the guest\'s /etc/passwd, /etc/group)');
    withFormats(withTarget(cmd)).action(
      fileAction('ls', (p: string) => p, async (pathArg: string, positional: string | undefined, opts: LsOptions) => {
        const path = guestPath(pathArg);
        return withGuestFiles(positional, opts, async (g) => {
          const self = await g.lstat(path);
          let entries: StatRecord[];
          // Like ls: a symlink operand is followed to its directory unless -l or -d asks about the link itself.
          const followLink = self.type === 'symlink' && !opts.long && !opts.directory;
          if (opts.directory || (self.type !== 'dir' && !followLink)) {
            entries = [{ ...self, name: pathArg }];
          } else {
            // Plain `ls` needs names only (the directory entries); -l and JSON need every inode.
            const withStat = !!(opts.long || opts.json || opts.jsonl);
            const listing = await g.readdir(path, { follow: true, withStat });
            entries = listing.entries.filter((e) => opts.all || !e.name.startsWith('.'));
            entries.sort(byName);
          }
          const wantNames = (opts.long || opts.json || opts.jsonl) && !opts.numericUidGid;
          const ids = wantNames ? await loadIdNames(g) : undefined;
          if (opts.json) printJson({ schemaVersion: SCHEMA_VERSION, path, entries: entries.map((e) => lsRecord(e, ids)) } satisfies LsDocument);
          else if (opts.jsonl) printJsonl(entries.map((e) => lsRecord(e, ids)));
          else if (opts.long) process.stdout.write(renderLong(entries, ids, !!opts.numericUidGid));
          else process.stdout.write(entries.map((e) => e.name + '\n').join(''));
        });
      }),
    );
  },
});
