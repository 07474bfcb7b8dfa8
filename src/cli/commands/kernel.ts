// `nearfield kernel` (alias `uname`): what kernel the guest runs and where each fact came from; and the report's
// kernel collector.

import type { KernelInfo, Uptime } from '../../generated/records.js';
import { defineRecordCommand, printable, type Column } from '../define.js';
import { defineCollector } from '../../report/collector.js';

type KernelFlags = {
  systemMap?: string; vmlinux?: string; isf?: string;
  // coreutils uname's fields
  all?: boolean; kernelName?: boolean; nodename?: boolean; kernelRelease?: boolean; kernelVersion?: boolean;
  machine?: boolean; processor?: boolean; hardwarePlatform?: boolean; operatingSystem?: boolean;
};

const unameFlags = ['kernelName', 'nodename', 'kernelRelease', 'kernelVersion', 'machine', 'processor', 'hardwarePlatform', 'operatingSystem'] as const;

/**
 * coreutils uname's line from the guest's utsname (init_uts_ns): the fields asked for, in uname's order
 * (-s -n -r -v -m -p -i -o); -a all of them but -p and -i, which are "unknown" on Linux and then left out.
 * The operating system is what coreutils built for Linux prints, "GNU/Linux".
 */
export function unameLine(u: Pick<Uptime, 'sysname' | 'nodename' | 'release' | 'version' | 'machine'>, f: KernelFlags): string {
  const values: Record<(typeof unameFlags)[number], string> = {
    kernelName: u.sysname, nodename: u.nodename, kernelRelease: u.release, kernelVersion: u.version, machine: u.machine,
    processor: 'unknown', hardwarePlatform: 'unknown', operatingSystem: 'GNU/Linux',
  };
  const asked = unameFlags.filter((k) => f[k] || (f.all && k !== 'processor' && k !== 'hardwarePlatform'));
  return (asked.length ? asked : ['kernelName' as const]).map((k) => printable(values[k])).join(' ') + '\n';
}

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
      .option('--isf <file>', 'Volatility 3 ISF (.json or .json.xz) of the guest kernel')
      // uname's own flags print its one line instead of the facts (as `nearfield uname -r`)
      .option('-a, --all', 'uname: all fields (except -p and -i when unknown)')
      .option('-s, --kernel-name', 'uname: the kernel name (Linux)')
      .option('-n, --nodename', "uname: the guest's hostname")
      .option('-r, --kernel-release', 'uname: the kernel release')
      .option('-v, --kernel-version', 'uname: the kernel version (build number and date)')
      .option('-m, --machine', 'uname: the machine hardware name')
      .option('-p, --processor', 'uname: the processor type (unknown)')
      .option('-i, --hardware-platform', 'uname: the hardware platform (unknown)')
      .option('-o, --operating-system', 'uname: the operating system (GNU/Linux)'),
  read: async (s, _f: KernelFlags) => (await s.guest()).kernel(),
  view: async (info, s, f: KernelFlags) => ({ info, uts: f.all || unameFlags.some((k) => f[k]) ? (await s.guest()).uptime() : undefined }),
  text: ({ uts }, f: KernelFlags) => (uts ? unameLine(uts, f) : undefined),
  rows: ({ info }) => kernelFacts(info),
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
