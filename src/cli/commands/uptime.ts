// `nearfield uptime [target]`: how long the guest has been up, its load averages, tasks, CPUs, hostname and
// release; and the report's uptime collector, whose table section is the report's "system" block.

import { defineRecordCommand } from '../define.js';
import { renderTable } from '../output.js';
import { defineCollector } from '../../report/collector.js';
import { humanDuration } from '../../report/units.js';

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

/** ns since the epoch (a decimal string) as an ISO 8601 time. */
export function isoFromNs(ns: string): string {
  return new Date(Number(BigInt(ns) / 1_000_000n)).toISOString();
}

export const command = defineRecordCommand({
  name: 'uptime',
  description: 'uptime, load averages, runnable/total tasks, CPUs, hostname and kernel release of the guest',
  read: async (s) => (await s.guest()).uptime(),
  text: (u) => {
    const clock = isoFromNs(u.realtimeNs).slice(11, 19);
    const cpus = u.onlineCpus.length;
    return (
      ` ${clock} ${upText(u.uptimeSeconds)},  load average: ${u.loadavg.join(', ')}\n` +
      `tasks: ${u.nrRunning ?? '?'} running / ${u.nrThreads ?? '?'} total, last pid ${u.lastPid ?? '?'}; ` +
      `${cpus} CPU${cpus === 1 ? '' : 's'} online\n` +
      `${u.nodename} ${u.sysname} ${u.release} ${u.machine}\n`
    );
  },
});

export const collectors = [
  defineCollector({
    name: 'uptime',
    needs: 'ram',
    order: 10,
    collect: ({ guest, sections }) => {
      sections.uptime = guest!.uptime();
    },
    table: (r) => {
      const u = r.sections.uptime;
      const k = r.sections.kernel;
      if (!u && !k) return undefined;
      const rows: [string, string][] = [];
      if (u?.nodename) rows.push(['hostname', u.nodename]);
      if (k?.release) rows.push(['kernel', `${k.release}, ${k.pagingLevels}-level paging, KASLR ${k.kaslrOffset}`]);
      if (u) {
        rows.push(['uptime', humanDuration(u.uptimeSeconds)]);
        if (BigInt(u.bootWallNs) > 0n) rows.push(['booted', isoFromNs(u.bootWallNs)]);
        rows.push(['load average', u.loadavg.join(', ')]);
        rows.push(['cpus online', String(u.onlineCpus.length)]);
        if (u.nrRunning !== null && u.nrThreads !== null) rows.push(['runnable/threads', `${u.nrRunning}/${u.nrThreads}`]);
      }
      return { title: 'system', body: renderTable(['', ''], rows) };
    },
    prometheus: (r, m) => {
      const u = r.sections.uptime;
      if (!u) return;
      m.gauge('node_uname_info', 'Labeled system information as provided by the uname system call.', 1, {
        sysname: u.sysname, release: u.release, version: u.version, machine: u.machine, nodename: u.nodename, domainname: u.domainname,
      });
      const seconds = (ns: string) => Number(BigInt(ns)) / 1e9;
      m.gauge('node_boot_time_seconds', 'Node boot time, in unixtime.', BigInt(u.bootWallNs) > 0n ? seconds(u.bootWallNs) : null);
      m.gauge('node_time_seconds', 'System time in seconds since epoch (1970).', BigInt(u.realtimeNs) > 0n ? seconds(u.realtimeNs) : null);
      m.gauge('nearfield_uptime_seconds', 'Seconds since the guest booted (CLOCK_BOOTTIME) at the snapshot.', u.uptimeSeconds);
      // /proc/loadavg's own rounding, so the numbers equal what the guest would print
      m.gauge('node_load1', '1m load average.', Number(u.loadavg[0]));
      m.gauge('node_load5', '5m load average.', Number(u.loadavg[1]));
      m.gauge('node_load15', '15m load average.', Number(u.loadavg[2]));
      m.gauge('node_procs_running', 'Number of processes in runnable state.', u.nrRunning);
      m.gauge('nearfield_cpus_online', 'Number of online CPUs in the guest.', u.onlineCpus.length);
    },
    vhostmd: (r, emit) => {
      const u = r.sections.uptime;
      emit('string', 'Hostname', u?.nodename);
      emit('real64', 'Uptime', u?.uptimeSeconds);
      emit('real64', 'LoadAverage1', u && Number(u.loadavg[0]));
      emit('real64', 'LoadAverage5', u && Number(u.loadavg[1]));
      emit('real64', 'LoadAverage15', u && Number(u.loadavg[2]));
      emit('uint64', 'NumberOfCPUs', u?.onlineCpus.length);
      emit('uint64', 'ProcessesRunning', u?.nrRunning);
    },
  }),
];
