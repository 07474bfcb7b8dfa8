// `nearfield uptime [target]`: how long the guest has been up, its load averages, tasks, CPUs, hostname and release.

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson } from '../output.js';
import { finish, guestFor, num } from '../walkers-common.js';

/** "up 2 days,  3:04" / "up 17 min" / "up 5 sec" in the style of procps uptime. */
export function upText(seconds: number): string {
  const s = Math.floor(seconds);
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const mins = Math.floor((s % 3600) / 60);
  const parts: string[] = [];
  if (days) parts.push(`${days} day${days === 1 ? '' : 's'}`);
  if (hours) parts.push(`${hours}:${String(mins).padStart(2, '0')}`);
  else if (mins) parts.push(`${mins} min`);
  else if (!days) parts.push(`${s} sec`);
  return `up ${parts.join(', ')}`;
}

export function registerUptime(program: Command): void {
  const cmd = program.command('uptime').description('uptime, load averages, runnable/total tasks, CPUs, hostname and kernel release of the guest');
  withFormats(withTarget(cmd), false).action(
    action('uptime', async (positional: string | undefined, opts: CommonOptions) => {
      const { guest } = await guestFor(positional, opts);
      const u = guest.uptime();
      const uptimeS = (num(u.boottimeNs) ?? 0) / 1e9;
      const record = {
        uptime_s: Math.round(uptimeS * 100) / 100,
        boot_time: new Date((num(u.bootWallNs) ?? 0) / 1e6).toISOString(),
        guest_time: new Date((num(u.realtimeNs) ?? 0) / 1e6).toISOString(),
        loadavg: u.loadavg.map(Number),
        running: u.nrRunning ?? null,
        threads: u.nrThreads ?? null,
        last_pid: u.lastPid ?? null,
        cpus_online: u.onlineCpus.length,
        online_cpus: u.onlineCpus,
        hostname: u.nodename,
        domainname: u.domainname,
        release: u.release,
        version: u.version,
        machine: u.machine,
        jiffies: num(u.jiffies ?? null),
        warnings: u.warnings,
      };
      if (opts.json) {
        printJson(record);
        return finish(u.warnings, opts);
      }
      const clock = record.guest_time.slice(11, 19);
      process.stdout.write(
        ` ${clock} ${upText(uptimeS)},  load average: ${u.loadavg.join(', ')}\n` +
          `tasks: ${record.running ?? '?'} running / ${record.threads ?? '?'} total, last pid ${record.last_pid ?? '?'}; ` +
          `${record.cpus_online} CPU${record.cpus_online === 1 ? '' : 's'} online\n` +
          `${u.nodename} ${u.sysname} ${u.release} ${u.machine}\n`,
      );
      return finish(u.warnings, opts);
    }),
  );
}
