// `nearfield snapshot`: capture a live VM's RAM and disk into a snapshot directory with the pause window measured.

import { Option } from 'commander';
import { captureSnapshot, type PauseMethod } from '../../snapshot/capture.js';
import { NearfieldError } from '../../errors.js';
import { action, clearStatus, note, printJson, printJsonl, showStatus, writeOut } from '../output.js';
import { onlyOnce } from '../common.js';
import { checkRamLayout } from '../../target.js';
import { defineCommand } from '../define.js';

interface SnapshotFlags {
  ram?: string;
  disk?: string;
  qmp?: string;
  firecrackerApi?: string;
  live?: boolean;
  paused?: boolean;
  ramLayout?: string;
  diskAfterResume?: boolean;
  sha256?: boolean;
  json?: boolean;
  jsonl?: boolean;
  quiet?: boolean;
}

export const command = defineCommand({
  name: 'snapshot',
  description: "copy a VM's RAM file and disk image into a snapshot directory, pausing it only while RAM is copied",
  setup: (cmd) => void onlyOnce(cmd, ['ram', 'disk', 'qmp', 'firecracker-api', 'ram-layout'])
    .argument('<dir>', 'snapshot directory to create (must not exist)')
    .option('--ram <file>', 'the VM\'s RAM file (QEMU memory-backend-file, Firecracker memory file)')
    .option('--disk <image>', 'the VM\'s disk image')
    .option('--qmp <socket>', 'pause/resume a QEMU VM through its QMP socket')
    .option('--firecracker-api <socket>', 'pause/resume a Firecracker VM through its API socket')
    .option('--live', 'do not pause: the copy may be torn; readers check and say so')
    .option('--paused', 'the VM is already paused or stopped: just copy')
    .addOption(new Option('--ram-layout <layout>', 'record the RAM layout in the manifest (qemu-pc, qemu-q35, firecracker, flat)'))
    .option('--disk-after-resume', 'copy the disk after resuming (shorter pause, disk may be newer than RAM)')
    .option('--sha256', 'record sha256 of the copies in the manifest (reads them again)')
    .option('--json', 'print the manifest as JSON')
    .option('--jsonl', 'print the manifest as one JSON line')
    .option('-q, --quiet', 'no progress or notes on stderr')
    .action(action('snapshot', async (dir: string, flags: SnapshotFlags) => {
      const pause = pauseMethod(flags);
      if (flags.ramLayout !== undefined) checkRamLayout(flags.ramLayout);
      const progress = progressBar(flags);
      const manifest = await captureSnapshot({
        ram: flags.ram,
        disk: flags.disk,
        out: dir,
        pause,
        ramLayout: flags.ramLayout,
        diskInPause: !flags.diskAfterResume,
        sha256: flags.sha256 === true,
        onProgress: progress,
      });
      clearStatus();
      for (const n of manifest.pause.notes) note(flags, n);
      if (flags.json) return printJson(manifest);
      if (flags.jsonl) return printJsonl([manifest]);
      const p = manifest.pause;
      const how = p.windowMs !== null ? ` (paused ${p.windowMs} ms via ${p.method})`
        : p.stateBefore !== null && !p.pausedByNearfield ? ` (the VM was ${p.stateBefore}: copied as it was, left so)` : '';
      const lines = [`snapshot: ${dir}`, `consistency: ${manifest.consistency}${how}`];
      for (const [label, f] of [['ram', manifest.ram], ['disk', manifest.disk]] as const) {
        if (f) lines.push(`${label}: ${f.file} ${f.sizeBytes} bytes, ${f.copy.method}, ${f.copy.dataBytes} data bytes in ${f.copy.ms} ms`);
      }
      writeOut(lines.join('\n') + '\n');
    })),
});

function pauseMethod(f: SnapshotFlags): PauseMethod {
  const chosen = [f.qmp, f.firecrackerApi, f.live, f.paused].filter((x) => x !== undefined && x !== false);
  if (chosen.length !== 1) {
    throw new NearfieldError('USAGE', 'say how to get a consistent copy: exactly one of --qmp SOCKET, --firecracker-api SOCKET, --paused or --live');
  }
  if (f.qmp) return { kind: 'qmp', socket: f.qmp };
  if (f.firecrackerApi) return { kind: 'firecracker', socket: f.firecrackerApi };
  return f.live ? { kind: 'live' } : { kind: 'none' };
}

/** A one-line progress bar on a terminal's stderr (not with -q), cleared before anything else is printed. */
function progressBar(flags: SnapshotFlags) {
  return (label: string, done: number, total: number) => {
    const pct = total > 0 ? Math.floor((done * 100) / total) : 100;
    const width = 30;
    const filled = Math.round((pct / 100) * width);
    showStatus(flags, `${label.padEnd(5)} [${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${pct}%`);
  };
}
