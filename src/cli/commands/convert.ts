// `nearfield convert IN OUT --to elf|raw`: any RAM source (raw, ELF core, LiME, kdump) rewritten for tools that want an ELF core or flat RAM.

import { resolve } from 'node:path';
import { Option } from 'commander';
import { callAsync, native } from '../../native/gateway.js';
import { ExitCode, NearfieldError } from '../../errors.js';
import { action, chatty, printJson, printJsonl, warn, type OutputOptions } from '../output.js';
import { defineCommand } from '../define.js';
import type { ConvertResult } from '../../generated/records.js';

interface ConvertOptions extends OutputOptions {
  to?: string;
  ramLayout?: string;
}

export const command = defineCommand({
  name: 'convert',
  description: 'rewrite a RAM file (raw, ELF core, LiME or kdump-compressed) as an ELF core or a flat raw file, streaming and sparse',
  setup: (cmd) => void cmd
    .argument('<in>', 'the RAM file to read (never written)')
    .argument('<out>', 'the file to create (must not exist)')
    .addOption(new Option('--to <format>', 'elf: ELF64 core, PT_LOAD p_paddr = guest-physical address, VMCOREINFO note; raw: offset = guest-physical address').choices(['elf', 'raw']).makeOptionMandatory())
    .addOption(new Option('--ram-layout <layout>', 'how a raw input maps to guest-physical addresses (auto, qemu-pc, qemu-q35, firecracker, flat)'))
    .option('--json', 'print what was written as one JSON document')
    .option('--jsonl', 'print it as one JSON line')
    .option('-q, --quiet', 'no progress on stderr')
    .action(action('convert', async (input: string, output: string, opts: ConvertOptions) => {
      if (resolve(input) === resolve(output)) throw new NearfieldError('USAGE', 'the output must be a new file, not the input');
      const job = new (native().RamConvert)(resolve(input), resolve(output), opts.to ?? 'elf', opts.ramLayout ?? 'auto');
      const stop = () => job.cancel();
      process.once('SIGINT', stop);
      const progress = chatty(opts) ? setInterval(() => bar(job.bytesDone(), job.totalBytes()), 200) : undefined;
      try {
        const r = await callAsync(input, () => job.start());
        if (progress) bar(job.bytesDone(), job.totalBytes(), true);
        const doc: ConvertResult = {
          schemaVersion: 1, input, output, to: opts.to === 'raw' ? 'raw' : 'elf', inputFormat: r.inputFormat, ranges: r.ranges,
          memoryBytes: r.memoryBytes, dataBytes: r.dataBytes, outputBytes: r.outputBytes, excludedPages: r.excludedPages,
          unreadablePages: r.unreadablePages, hasVmcoreinfo: r.hasVmcoreinfo, warnings: r.warnings, ms: r.millis,
        };
        if (opts.json) printJson(doc);
        else if (opts.jsonl) printJsonl([doc]);
        else {
          const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
          process.stdout.write(
            `${output}: ${opts.to === 'raw' ? 'raw RAM (offset = guest-physical address)' : 'ELF core'} from ${r.inputFormat}, ` +
              `${r.ranges} ranges, ${mib(r.memoryBytes)} of memory, ${mib(r.dataBytes)} written (the rest are holes)` +
              `${opts.to === 'elf' ? (r.hasVmcoreinfo ? ', VMCOREINFO note' : ', no VMCOREINFO') : ''}\n`,
          );
        }
        for (const w of r.warnings) warn(w);
        return r.warnings.length ? ExitCode.partial : ExitCode.ok;
      } finally {
        if (progress) clearInterval(progress);
        process.removeListener('SIGINT', stop);
      }
    })),
});

function bar(done: number, total: number, last = false): void {
  const pct = total > 0 ? Math.floor((done * 100) / total) : 0;
  const width = 30;
  const filled = Math.round((pct / 100) * width);
  process.stderr.write(`\rconvert [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${pct}%${last ? '\n' : ''}`);
}
