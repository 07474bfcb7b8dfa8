// Options shared by every command: the target (snapshot dir, --ram, --disk) and the output format flags.

import { Command, Option } from 'commander';
import type { OutputOptions } from './output.js';
import type { TargetOptions } from '../target.js';

export type CommonOptions = TargetOptions & OutputOptions & { cache?: boolean };

/** Add the target argument and options that every guest-reading command takes (`many`: several targets or globs;
 *  'none': the command takes its target from its own arguments). */
export function withTarget(cmd: Command, many: boolean | 'none' = false): Command {
  if (many === true) cmd.argument('[targets...]', 'snapshot directories, or globs of them (default: the embedded sample guest in images/)');
  else if (many === false) cmd.argument('[target]', 'snapshot directory (default: the embedded sample guest in images/)');
  cmd
    .option('--ram <file>', 'guest RAM: raw memory file, QEMU ELF core, LiME or kdump-compressed dump')
    .option('--disk <image>', 'guest disk image: raw, MBR/GPT partitioned or qcow2')
    .addOption(new Option('--ram-layout <layout>', 'how a raw RAM file maps to guest-physical addresses (auto, qemu-pc, qemu-q35, firecracker, flat)'))
    .option('--pid <pid>', 'read a running QEMU process live (guest map guessed from /proc/PID/maps; --qmp gives the exact one)')
    .option('--qmp <socket>', "read the running QEMU serving this QMP socket live, with QEMU's exact memory map")
    .option('--pause', 'with --qmp: pause the VM for the read (only if it was running) and resume it after')
    .option('--partition <n>', 'partition number on the disk (default: the Linux root partition)')
    .option('--no-cache', 'do not use or write the kernel profile cache')
    .option('-q, --quiet', 'no notes, progress or chatter on stderr (warnings and errors stay)');
  return onlyOnce(cmd, ['ram', 'disk', 'ram-layout', 'partition']);
}

/** A VM has one RAM file, one disk, one layout: a second --disk is a usage error, not a silent override. */
export function onlyOnce(cmd: Command, flags: string[]): Command {
  for (const flag of flags) {
    let seen = 0;
    cmd.on(`option:${flag}`, () => {
      if (++seen > 1) cmd.error(`--${flag} given twice: one VM has one`, { exitCode: 2, code: 'nearfield.usage' });
    });
  }
  return cmd;
}

/** Add --json / --jsonl. */
export function withFormats(cmd: Command, jsonl = true): Command {
  cmd.option('--json', 'one JSON document on stdout');
  if (jsonl) cmd.option('--jsonl', 'one JSON record per line on stdout');
  return cmd;
}
