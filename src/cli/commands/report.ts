// `nearfield report`: every collector that applies, for one VM or many in parallel, as a table, JSON, Prometheus or vhostmd XML.

import { Option } from 'commander';
import { existsSync, readdirSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { withTarget, type CommonOptions } from '../common.js';
import { action, printJson, printJsonl, writeOut, warn } from '../output.js';
import { checkRamLayout, resolveTarget, type Target } from '../../target.js';
import { failedTarget } from '../../report/collect.js';
import type { VmReport } from '../../generated/records.js';
import { ExitCode, NearfieldError } from '../../errors.js';
import { collectAll } from '../../report/run.js';
import { loadCollectors } from '../../report/collectors.js';
import { defineCommand } from '../define.js';
import { renderPrometheus } from '../../report/render/prometheus.js';
import { renderVhostmd } from '../../report/render/vhostmd.js';
import { renderReportTable } from '../../report/render/table.js';
import { GraphiteClient, parseHostPort, renderGraphite } from '../../report/render/graphite.js';
import { globToRegExp } from '../../../wasm/guest-path.js';

interface ReportFlags extends CommonOptions {
  prometheus?: boolean;
  vhostmd?: boolean;
  instance?: string;
  textfile?: string;
  graphite?: string;
  graphiteTags?: boolean;
  top: string;
  parallel?: string;
  systemMap?: string;
  vmlinux?: string;
  isf?: string;
}

export const command = defineCommand({
  name: 'report',
  description: 'one report of what an agent inside would say: kernel, uptime/load, processes, memory, free pages, filesystems',
  setup(cmd) {
    cmd
      .option('--json', 'one JSON document: an array with one report per VM')
      .option('--jsonl', 'one JSON report per line, one line per VM')
      .option('--prometheus', 'Prometheus text format with node_exporter metric names, label vm')
      .option('--vhostmd', 'vhostmd metrics XML')
      .option('--instance <name>', 'with --prometheus: set the instance label')
      .option('--textfile <file>', 'write the Prometheus output to FILE atomically (node_exporter textfile collector) instead of stdout')
      .option('--graphite <host:port>', 'send the metrics to Graphite (plaintext protocol, nearfield.<vm>.<group>.<metric>) instead of printing')
      .option('--graphite-tags', 'with --graphite: Graphite 1.1 tags for labels instead of path components')
      .option('--top <n>', 'processes in each top list', '5')
      .option('--parallel <n>', 'VMs read at once (default: the number of CPUs)')
      .addOption(new Option('--system-map <file>', 'System.map for kernels without VMCOREINFO kallsyms'))
      .addOption(new Option('--vmlinux <file>', 'vmlinux (symbols and .BTF) as a fallback'))
      .addOption(new Option('--isf <file>', 'Volatility 3 ISF (.json or .json.xz) as a fallback'));
    // Several targets: `report DIR1 DIR2 …` or a glob the shell did not expand (cron lines often quote theirs).
    withTarget(cmd, true);
    cmd.action(action('report', async (positionals: string[], flags: ReportFlags) => {
      const formats = [flags.json, flags.jsonl, flags.prometheus || flags.textfile !== undefined, flags.vhostmd, flags.graphite !== undefined].filter(Boolean).length;
      if (formats > 1) throw new NearfieldError('USAGE', 'choose one of --json, --jsonl, --prometheus/--textfile, --vhostmd, --graphite');
      let graphiteAt: { host: string; port: number } | undefined;
      try {
        graphiteAt = flags.graphite === undefined ? undefined : parseHostPort(flags.graphite, '--graphite');
      } catch (e) {
        throw new NearfieldError('USAGE', (e as Error).message);
      }
      const top = positiveInt(flags.top, '--top');
      const parallel = flags.parallel === undefined ? undefined : positiveInt(flags.parallel, '--parallel');
      if (positionals.length > 0 && (flags.ram || flags.disk)) {
        throw new NearfieldError('USAGE', 'give snapshot directories or --ram/--disk files, not both (a directory names its own RAM file and disk image)');
      }
      // Flag-level usage errors before any target: they are the same for every VM.
      if (flags.ramLayout !== undefined) checkRamLayout(flags.ramLayout);

      // Every readable target is reported; one that is not a snapshot (a stray file, an empty directory, a bad
      // manifest) is reported as down with its reason, and does not cost the others their report.
      const names = expandGlobs(positionals);
      const targets: Target[] = [];
      const down = new Map<number, VmReport>();
      const order = names.length > 0 ? names : [undefined];
      for (const [i, name] of order.entries()) {
        try {
          targets.push(await resolveTarget(name, flags, 'report'));
        } catch (e) {
          if (name === undefined) throw e;
          down.set(i, failedTarget(name, resolve(name), e));
        }
      }

      const collectors = await loadCollectors();
      const collected = targets.length === 0 ? [] : await collectAll(targets, {
        top,
        cache: flags.cache,
        systemMap: flags.systemMap,
        vmlinux: flags.vmlinux,
        isf: flags.isf,
      }, collectors, parallel);
      const reports: VmReport[] = [];
      for (let i = 0, next = 0; i < order.length; i++) reports.push(down.get(i) ?? (collected[next++] as VmReport));

      const table = !(flags.textfile !== undefined || flags.prometheus || flags.vhostmd || flags.json || flags.jsonl || graphiteAt);
      if (graphiteAt) await sendGraphite(graphiteAt, renderGraphite(reports, collectors, { tags: flags.graphiteTags }));
      else if (flags.textfile !== undefined) writeAtomically(flags.textfile, renderPrometheus(reports, collectors, { instance: flags.instance }));
      else if (flags.prometheus) writeOut(renderPrometheus(reports, collectors, { instance: flags.instance }));
      else if (flags.vhostmd) writeOut(renderVhostmd(reports, collectors));
      else if (flags.json) printJson(reports);
      else if (flags.jsonl) printJsonl(reports);
      else writeOut(renderReportTable(reports, collectors));

      // Each problem once: the table shows them itself; with a machine format they also go to stderr (cron mails it).
      let partial = false;
      for (const r of reports) {
        if (!table) {
          for (const w of r.warnings) warn(`${r.vm}: ${w}`);
          for (const e of r.errors) process.stderr.write(`nearfield: report ${r.vm}: ${e.collector === 'target' ? '' : `${e.collector}: `}${e.message}\n`);
        }
        if (r.errors.length > 0 || r.warnings.length > 0) partial = true;
      }
      const allFailed = reports.every((r) => !r.up || (r.errors.length > 0 && Object.keys(r.sections).length === 0));
      return allFailed ? ExitCode.failure : partial ? ExitCode.partial : ExitCode.ok;
    }));
  },
});

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new NearfieldError('USAGE', `${flag} takes a whole number from 1 to 10000, not "${v}"`);
  return n;
}

/** Expand `*`, `?` and `[…]` in the last path component (cron lines often quote their globs). */
export function expandGlobs(args: string[]): string[] {
  const out: string[] = [];
  for (const arg of args) {
    if (!/[*?[]/.test(basename(arg)) || existsSync(arg)) {
      out.push(arg);
      continue;
    }
    const dir = dirname(arg);
    const re = globToRegExp(basename(arg));
    const hits = existsSync(dir) ? readdirSync(dir).filter((n) => re.test(n) && !n.startsWith('.')).sort().map((n) => join(dir, n)) : [];
    if (hits.length === 0) throw new NearfieldError('NOT_FOUND', 'no snapshot directory matches', arg);
    out.push(...hits);
  }
  return out;
}

/** One-shot Graphite send: connect (retrying with backoff for up to 10 s), write every line, close. */
async function sendGraphite(at: { host: string; port: number }, lines: string[]): Promise<void> {
  const client = new GraphiteClient(at.host, at.port, { minBackoffMs: 200, maxBackoffMs: 2000 });
  try {
    client.send(lines);
    await client.flush(10_000);
  } catch (e) {
    throw new NearfieldError('IO', `cannot send to Graphite at ${at.host}:${at.port}: ${(e as Error).message}`);
  } finally {
    client.close();
  }
  process.stderr.write(`nearfield: sent ${lines.length} lines to Graphite at ${at.host}:${at.port}\n`);
}

/** node_exporter's textfile collector must never see a half-written file: write beside it, then rename. */
function writeAtomically(file: string, text: string): void {
  const path = resolve(file);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new NearfieldError('IO', `cannot write the textfile: ${(e as Error).message}`, path);
  }
}
