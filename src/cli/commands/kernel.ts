// `nearfield kernel` (alias `uname`): what kernel the guest runs and where each fact came from (issue #3).

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { call } from '../../native/gateway.js';
import { resolveTarget } from '../../target.js';
import { openGuest } from '../../guest.js';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, info, printJson, printTable, warn } from '../output.js';
import { ExitCode } from '../../errors.js';
import type { KernelInfo } from '../../../native/binding.js';

export type KernelOptions = CommonOptions & { systemMap?: string; vmlinux?: string; isf?: string };

function row(info: KernelInfo, label: string, value: string | number | null | undefined, fact?: string): (string | number)[] {
  const source = fact ? info.sources.find((s) => s.fact === fact)?.source ?? '-' : '';
  return [label, source, value === null || value === undefined || value === '' ? '-' : value];
}

export function kernelRows(info: KernelInfo): (string | number)[][] {
  return [
    row(info, 'release', info.release, 'release'),
    row(info, 'banner', info.banner, 'banner'),
    row(info, 'build id', info.buildId, 'build_id'),
    row(info, 'KASLR offset', info.kaslrOffset, 'kaslr_offset'),
    row(info, 'phys_base', info.physBase, 'phys_base'),
    row(info, 'paging levels', info.pagingLevels, 'paging_levels'),
    row(info, 'page-table root (DTB)', info.dtb, 'dtb'),
    row(info, 'direct map (page_offset_base)', info.pageOffsetBase, 'page_offset_base'),
    row(info, 'vmemmap_base', info.vmemmapBase, 'vmemmap_base'),
    row(info, 'vmalloc_base', info.vmallocBase, 'vmalloc_base'),
    [ 'symbols', info.symbolSource, info.symbolCount ],
    [ 'types (BTF)', info.typeSource, info.btfTypeCount ],
    row(info, 'VMCOREINFO', info.vmcoreinfoPhys ? `${info.vmcoreinfoEntries} entries at ${info.vmcoreinfoPhys}` : `${info.vmcoreinfoEntries} entries`, 'vmcoreinfo'),
    [ 'RAM', info.layoutGuessed ? 'guessed' : '', `${info.format}, ${info.layout}` ],
    [ 'profile cache', '', info.cacheHit ? `hit (${info.cacheFile ?? ''})` : 'miss' ],
    [ 'discovery', '', `${info.totalMs.toFixed(1)} ms` ],
  ];
}

/** `nearfield profile export --isf OUT.json [target]`: a Volatility 3 ISF from what discovery found in RAM. */
function registerProfile(program: Command): void {
  const profile = program.command('profile').description('the discovered kernel profile (symbols + types)');
  const exp = profile
    .command('export')
    .description('write a Volatility 3 ISF (symbols from kallsyms, types from BTF) so Volatility runs without the -dbg package')
    .requiredOption('--isf <out.json>', 'where to write the ISF (JSON)');
  withTarget(exp).action(
    action('profile export', async (positional: string | undefined, opts: KernelOptions & { isf: string }) => {
      const out = resolve(opts.isf);
      const target = await resolveTarget(positional, opts);
      const guest = await openGuest(target, { cache: opts.cache });
      const bytes = call(out, () => guest.exportIsf(out));
      const kinfo = call(undefined, () => guest.kernelInfo());
      info(opts, `wrote ${out} (${bytes} bytes: ${kinfo.symbolCount} symbols, ${kinfo.btfTypeCount} BTF types, ${kinfo.release ?? 'unknown release'})`);
      return ExitCode.ok;
    }),
  );
}

export function registerKernel(program: Command): void {
  registerProfile(program);
  const cmd = program
    .command('kernel')
    .alias('uname')
    .description('the guest kernel: release, banner, build id, KASLR offset, paging, page-table root, symbols and types, with where each came from');
  withFormats(withTarget(cmd), false)
    .option('--system-map <file>', 'System.map of the guest kernel (fallback when RAM has no kallsyms)')
    .option('--vmlinux <file>', 'vmlinux ELF of the guest kernel (fallback symbols and .BTF)')
    .option('--isf <file>', 'Volatility 3 ISF (.json or .json.xz) of the guest kernel')
    .action(
      action('kernel', async (positional: string | undefined, opts: KernelOptions & { json?: boolean }) => {
        const target = await resolveTarget(positional, opts);
        const guest = await openGuest(target, opts);
        const k = call(undefined, () => guest.kernelInfo());
        if (opts.json) {
          printJson(k);
        } else {
          printTable(['fact', 'source', 'value'], kernelRows(k));
        }
        for (const w of k.warnings) warn(w);
        return k.warnings.length > 0 ? ExitCode.partial : ExitCode.ok;
      }),
    );
}
