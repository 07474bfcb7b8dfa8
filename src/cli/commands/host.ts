// `nearfield host --qmp SOCKET | --pid PID`: the host tier of a running VM — the VMM process's CPU and RSS, each vCPU
// thread's CPU time and run-queue delay, block and tap I/O, its cgroup — and the report's host collector, named as the
// Prometheus libvirt exporter names them (libvirt_domain_*), with where the guest's view and the host's disagree.

import { NearfieldError } from '../../errors.js';
import { defineCommand } from '../define.js';
import { action, printJson, printJsonl } from '../output.js';
import { withTarget, type CommonOptions } from '../common.js';
import { resolveTarget } from '../../target.js';
import { qmpPeerPid } from '../../live/qemu.js';
import { compareTiers, readHostTier } from '../../host/vmm.js';
import { defineCollector, type Labels } from '../../report/collector.js';
import { humanBytes } from '../../report/units.js';
import { renderTable } from '../output.js';
import { SCHEMA_VERSION, type HostTier } from '../../generated/records.js';

function hostText(h: HostTier): string {
  const rows: [string, string][] = [
    ['VMM pid', String(h.pid)],
    ['VMM CPU', `${(h.cpuUserSeconds ?? 0).toFixed(2)} s user, ${(h.cpuSystemSeconds ?? 0).toFixed(2)} s system`],
    ['VMM RSS', h.rssBytes === null ? '-' : humanBytes(h.rssBytes)],
  ];
  for (const v of h.vcpus) rows.push([`vCPU ${v.index} (tid ${v.threadId})`, `${v.cpuSeconds?.toFixed(2) ?? '-'} s CPU, ${v.delaySeconds?.toFixed(3) ?? '-'} s run-queue delay`]);
  for (const b of h.block) rows.push([`block ${b.device}`, `read ${humanBytes(b.readBytes)} in ${b.readRequests}, written ${humanBytes(b.writeBytes)} in ${b.writeRequests}`]);
  for (const i of h.interfaces) rows.push([`net ${i.device}`, `received ${humanBytes(i.receiveBytes)}, sent ${humanBytes(i.transmitBytes)}`]);
  if (h.cgroup) rows.push([`cgroup ${h.cgroup.path}`, `${h.cgroup.cpuUsageSeconds?.toFixed(2) ?? '-'} s CPU, memory ${h.cgroup.memoryCurrentBytes === null ? '-' : humanBytes(h.cgroup.memoryCurrentBytes)}`]);
  const t = h.tiers;
  if (t) {
    if (t.guestCpuSeconds !== null && t.vcpuCpuSeconds !== null) rows.push(['guest vs host CPU', `${t.guestCpuSeconds.toFixed(2)} s busy in the guest, ${t.vcpuCpuSeconds.toFixed(2)} s on the vCPU threads (×${t.cpuRatio?.toFixed(2) ?? '-'})`]);
    if (t.guestMemTotalBytes !== null && t.vmmRssBytes !== null) rows.push(['guest vs host memory', `MemTotal ${humanBytes(t.guestMemTotalBytes)}, VMM RSS ${humanBytes(t.vmmRssBytes)} (×${t.memoryRatio?.toFixed(2) ?? '-'})`]);
  }
  return renderTable(['', ''], rows);
}

export const command = defineCommand({
  name: 'host',
  description: 'the host tier of a running VM: VMM CPU and RSS, vCPU thread CPU and run-queue delay, block and tap I/O, cgroup',
  setup(cmd) {
    withTarget(cmd).option('--json', 'one JSON document').option('--jsonl', 'the document on one line');
    cmd.action(action('host', async (positional: string | undefined, flags: CommonOptions) => {
      const target = await resolveTarget(positional, flags);
      if (!target.live) throw new NearfieldError('USAGE', 'the host tier is read from a running VM: give --pid PID or --qmp SOCKET');
      const pid = target.live.pid ?? qmpPeerPid(target.live.qmp as string);
      const h = await readHostTier(pid, target.live.qmp);
      if (flags.json) printJson({ schemaVersion: SCHEMA_VERSION, host: h });
      else if (flags.jsonl) printJsonl([{ schemaVersion: SCHEMA_VERSION, host: h }]);
      else process.stdout.write(hostText(h) + '\n');
      return h.warnings.length > 0 ? 3 : 0;
    }));
  },
});

export const collectors = [
  defineCollector({
    name: 'host',
    needs: 'host',
    order: 90,
    collect: async ({ target, sections }) => {
      const live = target?.live;
      if (!live) return;
      const pid = live.pid ?? qmpPeerPid(live.qmp as string);
      const host = await readHostTier(pid, live.qmp);
      const memTotal = sections.meminfo?.fields.find((f) => f.name === 'MemTotal');
      host.tiers = compareTiers(host, { busySeconds: sections.cpustat?.busySeconds ?? null, memTotalBytes: memTotal ? memTotal.value * 1024 : null });
      sections.host = host;
    },
    table: (r) => r.sections.host && { title: 'host (the VMM, seen from the host)', body: hostText(r.sections.host) },
    prometheus: (r, m) => {
      const h = r.sections.host;
      if (!h) return;
      // libvirt exporter names and labels (domain, target_device, vcpu), so existing dashboards work.
      const d: Labels = { domain: r.vm };
      m.counter('libvirt_domain_info_cpu_time_seconds_total', 'Amount of CPU time used by the domain, in seconds.', h.cpuUserSeconds !== null && h.cpuSystemSeconds !== null ? h.cpuUserSeconds + h.cpuSystemSeconds : null, d);
      m.counter('libvirt_domain_info_cpu_time_user_seconds_total', 'CPU time of the VMM process in user mode, in seconds.', h.cpuUserSeconds, d);
      m.counter('libvirt_domain_info_cpu_time_system_seconds_total', 'CPU time of the VMM process in kernel mode, in seconds.', h.cpuSystemSeconds, d);
      m.gauge('libvirt_domain_memory_stats_rss_bytes', 'Resident Set Size of the process running the domain, in bytes.', h.rssBytes, d);
      m.gauge('libvirt_domain_info_virtual_cpus', 'Number of virtual CPUs for the domain.', h.vcpus.length, d);
      for (const v of h.vcpus) {
        const l = { ...d, vcpu: String(v.index) };
        m.counter('libvirt_domain_vcpu_time_seconds_total', 'Amount of CPU time used by the domain\'s VCPU, in seconds.', v.cpuSeconds, l);
        m.counter('libvirt_domain_vcpu_delay_seconds_total', 'Amount of CPU time used by the domain\'s VCPU while waiting on a run queue, in seconds (steal time as the host causes it).', v.delaySeconds, l);
      }
      for (const b of h.block) {
        const l = { ...d, target_device: b.device };
        m.counter('libvirt_domain_block_stats_read_bytes_total', 'Number of bytes read from a block device, in bytes.', b.readBytes, l);
        m.counter('libvirt_domain_block_stats_read_requests_total', 'Number of read requests from a block device.', b.readRequests, l);
        m.counter('libvirt_domain_block_stats_read_time_seconds_total', 'Total time spent on reads from a block device, in seconds.', b.readTimeSeconds, l);
        m.counter('libvirt_domain_block_stats_write_bytes_total', 'Number of bytes written to a block device, in bytes.', b.writeBytes, l);
        m.counter('libvirt_domain_block_stats_write_requests_total', 'Number of write requests to a block device.', b.writeRequests, l);
        m.counter('libvirt_domain_block_stats_write_time_seconds_total', 'Total time spent on writes to a block device, in seconds.', b.writeTimeSeconds, l);
        m.counter('libvirt_domain_block_stats_flush_requests_total', 'Total flush requests from a block device.', b.flushRequests, l);
        m.counter('libvirt_domain_block_stats_flush_time_seconds_total', 'Total time in seconds spent on cache flushing to a block device.', b.flushTimeSeconds, l);
      }
      for (const i of h.interfaces) {
        const l = { ...d, target_device: i.device };
        m.counter('libvirt_domain_interface_stats_receive_bytes_total', 'Number of bytes received on a network interface, in bytes.', i.receiveBytes, l);
        m.counter('libvirt_domain_interface_stats_receive_packets_total', 'Number of packets received on a network interface.', i.receivePackets, l);
        m.counter('libvirt_domain_interface_stats_receive_errors_total', 'Number of packet receive errors on a network interface.', i.receiveErrors, l);
        m.counter('libvirt_domain_interface_stats_receive_drops_total', 'Number of packet receive drops on a network interface.', i.receiveDrops, l);
        m.counter('libvirt_domain_interface_stats_transmit_bytes_total', 'Number of bytes transmitted on a network interface, in bytes.', i.transmitBytes, l);
        m.counter('libvirt_domain_interface_stats_transmit_packets_total', 'Number of packets transmitted on a network interface.', i.transmitPackets, l);
        m.counter('libvirt_domain_interface_stats_transmit_errors_total', 'Number of packet transmit errors on a network interface.', i.transmitErrors, l);
        m.counter('libvirt_domain_interface_stats_transmit_drops_total', 'Number of packet transmit drops on a network interface.', i.transmitDrops, l);
      }
      if (h.cgroup) {
        m.counter('nearfield_vmm_cgroup_cpu_usage_seconds_total', 'cpu.stat usage_usec of the VMM\'s cgroup v2, in seconds.', h.cgroup.cpuUsageSeconds, { ...d, cgroup: h.cgroup.path });
        m.gauge('nearfield_vmm_cgroup_memory_current_bytes', 'memory.current of the VMM\'s cgroup v2.', h.cgroup.memoryCurrentBytes, { ...d, cgroup: h.cgroup.path });
      }
      const t = h.tiers;
      if (t) {
        m.gauge('nearfield_tiers_guest_cpu_seconds', 'Busy CPU time the guest counted (its cpustat), to compare with libvirt_domain_vcpu_time_seconds_total.', t.guestCpuSeconds, d);
        m.gauge('nearfield_tiers_cpu_ratio', 'Guest busy CPU time / vCPU thread CPU time on the host.', t.cpuRatio, d);
        m.gauge('nearfield_tiers_memory_ratio', 'Guest MemTotal / VMM RSS on the host.', t.memoryRatio, d);
      }
    },
  }),
];
