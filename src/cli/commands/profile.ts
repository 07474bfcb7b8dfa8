// `nearfield profile export --isf OUT.json [target]`: a Volatility 3 ISF from what discovery found in RAM.

import { resolve } from 'node:path';
import { resolveTarget } from '../../target.js';
import { openTargetGuest } from '../../guest.js';
import { ExitCode } from '../../errors.js';
import { withTarget, type CommonOptions } from '../common.js';
import { action, info } from '../output.js';
import { defineCommand } from '../define.js';

export const command = defineCommand({
  name: 'profile',
  description: 'the discovered kernel profile (symbols + types)',
  setup(profile) {
    const exp = profile
      .command('export')
      .description('write a Volatility 3 ISF (symbols from kallsyms, types from BTF) so Volatility runs without the -dbg package')
      .requiredOption('--isf <out.json>', 'where to write the ISF (JSON)');
    withTarget(exp).action(
      action('profile export', async (positional: string | undefined, opts: CommonOptions & { isf: string }) => {
        const out = resolve(opts.isf);
        const guest = await openTargetGuest(await resolveTarget(positional, opts), { cache: opts.cache });
        try {
          const bytes = guest.exportIsf(out);
          const k = guest.kernel();
          info(opts, `wrote ${out} (${bytes} bytes: ${k.symbolCount} symbols, ${k.btfTypeCount} BTF types, ${k.release ?? 'unknown release'})`);
          return ExitCode.ok;
        } finally {
          guest.close();
        }
      }),
    );
  },
});
