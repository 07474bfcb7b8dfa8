// `nearfield cat PATH [target]`: a guest file's bytes to stdout, binary-safe, streamed in ≤ 1 MiB chunks.

import { withTarget, type CommonOptions } from '../common.js';
import { defineCommand } from '../define.js';
import { fileAction, guestPath, withGuestFiles } from '../files-common.js';

/** Write with backpressure (fileAction ends the process quietly on EPIPE). */
function writeOut(chunk: Buffer): Promise<void> | void {
  if (process.stdout.write(chunk)) return;
  return new Promise((resolve) => {
    const done = (): void => {
      process.stdout.off('drain', done);
      process.stdout.off('error', done);
      resolve();
    };
    process.stdout.on('drain', done);
    process.stdout.on('error', done);
  });
}

export const command = defineCommand({
  name: 'cat',
  description: "print a guest file from the disk image to stdout (read-only: no atime update, nothing written)",
  setup(cmd) {
    cmd
      .argument('<path>', 'guest path (symlinks are followed)');
    withTarget(cmd).action(
      fileAction('cat', (p: string) => p, async (pathArg: string, positional: string | undefined, opts: CommonOptions) => {
        const path = guestPath(pathArg);
        await withGuestFiles(positional, opts, (g) => g.stream(path, writeOut));
      }),
    );
  },
});
