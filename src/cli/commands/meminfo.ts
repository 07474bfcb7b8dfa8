// `nearfield meminfo [target]`: every /proc/meminfo field, computed from the guest's RAM as fs/proc/meminfo.c does.

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson } from '../output.js';
import { finish, guestFor } from '../walkers-common.js';

/** "Name:   value kB" with /proc's widths: name padded to 16 columns, value right-aligned in 8. */
export function meminfoLine(name: string, value: number, unit: string): string {
  const label = `${name}:`.padEnd(16);
  return unit ? `${label}${String(value).padStart(8)} ${unit}` : `${label}${String(value).padStart(8)}`;
}

export function registerMeminfo(program: Command): void {
  const cmd = program.command('meminfo').description('the guest\'s /proc/meminfo, computed from its RAM the way its kernel computes it');
  withFormats(withTarget(cmd), false).action(
    action('meminfo', async (positional: string | undefined, opts: CommonOptions) => {
      const { guest } = await guestFor(positional, opts);
      const info = guest.meminfo();
      if (opts.json) {
        printJson({ fields: Object.fromEntries(info.fields.map((f) => [f.name, f.value])), unit: 'kB', warnings: info.warnings });
      } else {
        process.stdout.write(info.fields.map((f) => meminfoLine(f.name, f.value, f.unit)).join('\n') + '\n');
      }
      return finish(info.warnings, opts);
    }),
  );
}
