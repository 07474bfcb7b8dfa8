// `nearfield kernel` (alias `uname`): what kernel the guest runs and where each fact came from; and the report's
// kernel collector.

import type { KernelInfo } from '../../generated/records.js';
import { defineRecordCommand, type Column } from '../define.js';
import { defineCollector } from '../../report/collector.js';

type KernelFlags = { systemMap?: string; vmlinux?: string; isf?: string };

interface Fact { label: string; source: string; value: string | number | null | undefined }

function fact(info: KernelInfo, label: string, value: string | number | null | undefined, name?: string): Fact {
  return { label, source: name ? info.sources.find((s) => s.fact === name)?.source ?? '-' : '', value: value === '' ? null : value };
}

export function kernelFacts(info: KernelInfo): Fact[] {
  return [
    fact(info, 'release', info.release, 'release'),
    fact(info, 'banner', info.banner, 'banner'),
    fact(info, 'build id', info.buildId, 'build_id'),
    fact(info, 'KASLR offset', info.kaslrOffset, 'kaslr_offset'),
    fact(info, 'phys_base', info.physBase, 'phys_base'),
    fact(info, 'paging levels', info.pagingLevels, 'paging_levels'),
    fact(info, 'page-table root (DTB)', info.dtb, 'dtb'),
    fact(info, 'direct map (page_offset_base)', info.pageOffsetBase, 'page_offset_base'),
    fact(info, 'vmemmap_base', info.vmemmapBase, 'vmemmap_base'),
    fact(info, 'vmalloc_base', info.vmallocBase, 'vmalloc_base'),
    { label: 'symbols', source: info.symbolSource, value: info.symbolCount },
    { label: 'types (BTF)', source: info.typeSource, value: info.btfTypeCount },
    fact(info, 'VMCOREINFO', info.vmcoreinfoPhys ? `${info.vmcoreinfoEntries} entries at ${info.vmcoreinfoPhys}` : `${info.vmcoreinfoEntries} entries`, 'vmcoreinfo'),
    { label: 'RAM', source: info.layoutGuessed ? 'guessed' : '', value: `${info.format}, ${info.layout}` },
    { label: 'profile cache', source: '', value: info.cacheHit ? `hit (${info.cacheFile ?? ''})` : 'miss' },
    { label: 'discovery', source: '', value: `${info.totalMs.toFixed(1)} ms` },
    { label: 'command line', source: 'saved_command_line', value: info.commandLine },
    { label: 'tainted', source: 'tainted_mask', value: info.tainted === null ? null : `${info.tainted}${info.taintLetters ? ` (${info.taintLetters})` : ''}` },
    ...info.sysctls.map((s) => ({ label: s.name, source: 'sysctl', value: s.value.replace(/\t/g, ' ') })),
  ];
}

const columns: Column<Fact>[] = [
  { header: 'fact', cell: (f) => f.label },
  { header: 'source', cell: (f) => f.source },
  { header: 'value', cell: (f) => f.value },
];

export const command = defineRecordCommand({
  name: 'kernel',
  aliases: ['uname'],
  description: 'the guest kernel: release, banner, build id, KASLR offset, paging, page-table root, symbols and types, with where each came from; its command line, taint and selected sysctls',
  flags: (cmd) =>
    cmd
      .option('--system-map <file>', 'System.map of the guest kernel (fallback when RAM has no kallsyms)')
      .option('--vmlinux <file>', 'vmlinux ELF of the guest kernel (fallback symbols and .BTF)')
      .option('--isf <file>', 'Volatility 3 ISF (.json or .json.xz) of the guest kernel'),
  read: async (s, _f: KernelFlags) => (await s.guest()).kernel(),
  rows: (info) => kernelFacts(info),
  columns,
});

export const collectors = [
  defineCollector({
    name: 'kernel',
    needs: 'ram',
    order: 0,
    collect: ({ guest, sections }) => {
      sections.kernel = guest!.kernel();
    },
    vhostmd: (r, emit) => emit('string', 'KernelRelease', r.sections.kernel?.release ?? r.sections.uptime?.release),
  }),
];
