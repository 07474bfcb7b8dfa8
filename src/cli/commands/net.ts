// `nearfield net [target]`: the guest's interfaces (addresses, flags, counters as /proc/net/dev sums them) and
// sockets (TCP and UDP like `ss -tuanp`, unix sockets with their paths), each with the processes holding it;
// and the report's network collector (interfaces, listening ports, node_network_* and node_sockstat_* metrics).

import type { InetSocket, NetInfo, NetInterface, SocketOwner, UnixSocket } from '../../generated/records.js';
import { defineRecordCommand, printable } from '../define.js';
import { renderTable } from '../output.js';
import { defineCollector, type MetricSink } from '../../report/collector.js';
import { humanBytes } from '../../report/units.js';
import { pidOption } from './lsof.js';

interface NetFlags { process?: string }

/** ss's address:port ("[::1]:7002", "0.0.0.0:*" for no port). */
export function endpoint(family: string, address: string, port: number): string {
  return `${family === 'inet6' ? `[${address}]` : address}:${port === 0 ? '*' : port}`;
}

/** ss -p's users:(("comm",pid=N,fd=M),…). */
function users(owners: SocketOwner[]): string {
  return owners.length ? `users:(${owners.map((o) => `("${printable(o.comm)}",pid=${o.pid},fd=${o.fd})`).join(',')})` : '';
}

/** ss's state names (UNCONN for an unconnected datagram socket). */
function ssState(s: InetSocket): string {
  if (s.protocol === 'udp') return s.state === 'ESTABLISHED' ? 'ESTAB' : 'UNCONN';
  return { ESTABLISHED: 'ESTAB', SYN_RECV: 'SYN-RECV', SYN_SENT: 'SYN-SENT', FIN_WAIT1: 'FIN-WAIT-1', FIN_WAIT2: 'FIN-WAIT-2', TIME_WAIT: 'TIME-WAIT', CLOSE_WAIT: 'CLOSE-WAIT', LAST_ACK: 'LAST-ACK', CLOSE: 'UNCONN' }[s.state] ?? s.state;
}

function addresses(i: NetInterface): string {
  return i.addresses.map((a) => `${a.address}/${a.prefixlen}`).join(' ');
}

function interfacesTable(n: NetInfo): string {
  return renderTable(
    ['IFACE', 'INDEX', 'MAC', 'MTU', 'STATE', 'FLAGS', 'ADDRESSES', 'RX BYTES', 'RX PKTS', 'TX BYTES', 'TX PKTS'],
    n.interfaces.map((i) => [
      i.name, i.ifindex, i.mac, i.mtu, i.operstate, i.flagNames.join(','), addresses(i),
      i.stats?.rxBytes ?? '-', i.stats?.rxPackets ?? '-', i.stats?.txBytes ?? '-', i.stats?.txPackets ?? '-',
    ]),
    [false, true, false, true, false, false, false, true, true, true, true],
  );
}

function socketsTable(n: NetInfo): string {
  return renderTable(
    ['Netid', 'State', 'Recv-Q', 'Send-Q', 'Local Address:Port', 'Peer Address:Port', 'Inode', 'Process'],
    n.sockets.map((s) => [
      s.protocol, ssState(s), s.rxQueue, s.txQueue, endpoint(s.family, s.localAddress, s.localPort), endpoint(s.family, s.remoteAddress, s.remotePort), s.inode, users(s.owners),
    ]),
    [false, false, true, true, false, false, true, false],
  );
}

function unixTable(u: UnixSocket[]): string {
  return renderTable(
    ['Type', 'State', 'Inode', 'Path', 'Process'],
    u.map((s) => [s.socketType, s.state, s.inode, s.path === null ? '*' : printable(s.path), users(s.owners)]),
    [false, false, true, false, false],
  );
}

export const command = defineRecordCommand({
  name: 'net',
  description: "the guest's interfaces (addresses, flags, counters) and its sockets: TCP and UDP like ss -tuanp, unix sockets with paths, each with its processes",
  flags: (cmd) => cmd.option('-p, --process <pid>', 'only the sockets this guest process holds open (--pid names a QEMU process to read live)'),
  validate: (f: NetFlags) => void pidOption(f.process, '--process'),
  read: async (s, f: NetFlags): Promise<NetInfo> => (await s.guest()).net({ pid: pidOption(f.process, '--process') ?? null }),
  text: (n) => `Interfaces\n${interfacesTable(n)}\n\nTCP and UDP sockets\n${socketsTable(n)}\n\nUnix sockets\n${unixTable(n.unix)}\n`,
});

/** node_exporter's netdev collector names (from /proc/net/dev) and the record's counters. */
const netdev: [string, keyof NonNullable<NetInterface['stats']>, string][] = [
  ['receive_bytes', 'rxBytes', 'bytes'], ['receive_packets', 'rxPackets', 'packets'], ['receive_errs', 'rxErrs', 'errs'], ['receive_drop', 'rxDrop', 'drop'],
  ['receive_fifo', 'rxFifo', 'fifo'], ['receive_frame', 'rxFrame', 'frame'], ['receive_compressed', 'rxCompressed', 'compressed'], ['receive_multicast', 'rxMulticast', 'multicast'],
  ['transmit_bytes', 'txBytes', 'bytes'], ['transmit_packets', 'txPackets', 'packets'], ['transmit_errs', 'txErrs', 'errs'], ['transmit_drop', 'txDrop', 'drop'],
  ['transmit_fifo', 'txFifo', 'fifo'], ['transmit_colls', 'txColls', 'colls'], ['transmit_carrier', 'txCarrier', 'carrier'], ['transmit_compressed', 'txCompressed', 'compressed'],
];

function sockstatMetrics(n: NetInfo, m: MetricSink): void {
  const s = n.sockstat;
  const g = (name: string, help: string, v: number | null | undefined) => m.gauge(`node_sockstat_${name}`, help, v);
  g('sockets_used', 'Number of IPv4 sockets in use.', s.socketsUsed);
  g('TCP_inuse', 'Number of TCP sockets in state inuse.', s.tcpInuse);
  g('TCP_orphan', 'Number of TCP sockets in state orphan.', s.tcpOrphan);
  g('TCP_tw', 'Number of TCP sockets in state tw.', s.tcpTw);
  g('TCP_alloc', 'Number of TCP sockets in state alloc.', s.tcpAlloc);
  g('TCP_mem', 'Number of TCP sockets in state mem.', s.tcpMem);
  g('UDP_inuse', 'Number of UDP sockets in state inuse.', s.udpInuse);
  g('UDP_mem', 'Number of UDP sockets in state mem.', s.udpMem);
  g('RAW_inuse', 'Number of RAW sockets in state inuse.', s.rawInuse);
  g('TCP6_inuse', 'Number of TCP6 sockets in state inuse.', s.tcp6Inuse);
  g('UDP6_inuse', 'Number of UDP6 sockets in state inuse.', s.udp6Inuse);
  g('RAW6_inuse', 'Number of RAW6 sockets in state inuse.', s.raw6Inuse);
}

/** Listening TCP sockets and bound, unconnected UDP ones: what a service offers. */
export function listening(n: NetInfo): InetSocket[] {
  return n.sockets.filter((s) => s.state === 'LISTEN' || (s.protocol === 'udp' && s.state === 'CLOSE'));
}

export const collectors = [
  defineCollector({
    name: 'net',
    needs: 'ram',
    order: 47,
    collect: ({ guest, sections }) => {
      sections.net = guest!.net();
    },
    table: (r) => {
      const n = r.sections.net;
      if (!n) return undefined;
      const ifaces = renderTable(
        ['IFACE', 'STATE', 'ADDRESSES', 'RX', 'TX'],
        n.interfaces.map((i) => [i.name, i.operstate, addresses(i), i.stats ? humanBytes(Number(i.stats.rxBytes)) : '-', i.stats ? humanBytes(Number(i.stats.txBytes)) : '-']),
        [false, false, false, true, true],
      );
      const ports = renderTable(
        ['PROTO', 'LOCAL', 'PROCESS'],
        listening(n).map((s) => [s.protocol + (s.family === 'inet6' ? '6' : ''), endpoint(s.family, s.localAddress, s.localPort), s.owners.map((o) => `${printable(o.comm)}[${o.pid}]`).join(', ')]),
      );
      const tcp = n.sockets.filter((s) => s.protocol === 'tcp').length;
      return {
        title: `network: ${n.interfaces.length} interfaces, ${tcp} TCP / ${n.sockets.length - tcp} UDP / ${n.unix.length} unix sockets`,
        body: `${ifaces}\n${listening(n).length ? `listening\n${ports}` : 'listening: none'}`,
      };
    },
    prometheus: (r, m) => {
      const n = r.sections.net;
      if (!n) return;
      for (const i of n.interfaces) {
        const device = { device: i.name };
        if (i.stats) {
          for (const [name, key, what] of netdev) m.counter(`node_network_${name}_total`, `Network device statistic ${what}.`, Number(i.stats[key]), device);
        }
        m.gauge('node_network_mtu_bytes', 'Network device property: mtu_bytes', i.mtu, device);
        m.gauge('node_network_up', 'Value is 1 if operstate is \'up\', 0 otherwise.', i.operstate === 'up' ? 1 : 0, device);
        m.gauge('node_network_info', 'Non-numeric data of the network device; value is always 1.', 1, { ...device, address: i.mac, broadcast: i.broadcast, operstate: i.operstate });
      }
      sockstatMetrics(n, m);
      m.gauge('nearfield_listening_sockets', 'TCP sockets listening and UDP sockets bound but unconnected.', listening(n).length);
    },
    vhostmd: (r, emit) => {
      const n = r.sections.net;
      emit('uint64', 'NetworkInterfaces', n?.interfaces.length);
      emit('uint64', 'TCPSockets', n?.sockets.filter((s) => s.protocol === 'tcp').length);
    },
  }),
];
