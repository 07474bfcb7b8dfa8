// `nearfield stat [-L] PATH [target]`: one guest inode with all four timestamps, like GNU stat.

import type { StatRecord } from '../../../wasm/protocol.js';
import { SCHEMA_VERSION, type StatDocument } from '../../generated/records.js';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { defineCommand } from '../define.js';
import { printJson, printJsonl, writeOut } from '../output.js';
import { fileAction, guestPath, isoTime, jsonTime, loadIdNames, modeString, octalMode, withGuestFiles, type IdNames } from '../files-common.js';

interface StatOptions extends CommonOptions {
  dereference?: boolean;
}

const typeWords: Record<string, string> = {
  file: 'regular file', dir: 'directory', symlink: 'symbolic link', chr: 'character special file',
  blk: 'block special file', fifo: 'fifo', sock: 'socket', unknown: 'unknown type',
};

export function statRecord(r: StatRecord, ids: IdNames, blockSize: number): StatDocument {
  return {
    schemaVersion: SCHEMA_VERSION,
    path: r.path,
    ino: r.ino,
    type: r.type,
    mode: octalMode(r.mode),
    modeString: modeString(r),
    links: r.links,
    uid: r.uid,
    user: ids.user(r.uid) ?? null,
    gid: r.gid,
    group: ids.group(r.gid) ?? null,
    sizeBytes: r.size,
    blocks: r.blocks,
    ioBlock: blockSize,
    flags: `0x${r.flags.toString(16)}`,
    atime: jsonTime(r.atime),
    mtime: jsonTime(r.mtime),
    ctime: jsonTime(r.ctime),
    crtime: jsonTime(r.crtime),
    ...(r.target !== undefined ? { target: r.target } : {}),
  };
}

export function renderStat(r: StatRecord, shown: string, ids: IdNames, blockSize: number): string {
  const name = r.target !== undefined ? `${shown} -> ${r.target}` : shown;
  const user = ids.user(r.uid) ?? 'UNKNOWN';
  const group = ids.group(r.gid) ?? 'UNKNOWN';
  return [
    `  File: ${name}`,
    `  Size: ${String(r.size).padEnd(15)} Blocks: ${String(r.blocks).padEnd(10)} IO Block: ${String(blockSize).padEnd(6)} ${typeWords[r.type]}`,
    ` Inode: ${String(r.ino).padEnd(15)} Links: ${r.links}`,
    `Access: (${octalMode(r.mode)}/${modeString(r)})  Uid: (${String(r.uid).padStart(5)}/${user.padStart(8)})   Gid: (${String(r.gid).padStart(5)}/${group.padStart(8)})`,
    `Access: ${isoTime(r.atime)}`,
    `Modify: ${isoTime(r.mtime)}`,
    `Change: ${isoTime(r.ctime)}`,
    ` Birth: ${r.crtime ? isoTime(r.crtime) : '- (the inode has no i_crtime field)'}`,
  ].join('\n') + '\n';
}

export const command = defineCommand({
  name: 'stat',
  description: "show a guest file's inode: size, blocks, links, owner, mode and access/modify/change/birth times (UTC)",
  setup(cmd) {
    cmd
      .argument('<path>', 'guest path')
      .option('-L, --dereference', 'follow a symlink to what it names');
    withFormats(withTarget(cmd)).action(
      fileAction('stat', (p: string) => p, async (pathArg: string, positional: string | undefined, opts: StatOptions) => {
        const path = guestPath(pathArg);
        await withGuestFiles(positional, opts, async (g) => {
          const r = opts.dereference ? await g.stat(path) : await g.lstat(path);
          const ids = await loadIdNames(g);
          if (opts.json) printJson(statRecord(r, ids, g.info.blockSize));
          else if (opts.jsonl) printJsonl([statRecord(r, ids, g.info.blockSize)]);
          else writeOut(renderStat(r, pathArg, ids, g.info.blockSize));
        });
      }),
    );
  },
});
