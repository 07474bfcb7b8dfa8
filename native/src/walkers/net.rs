//! The initial network namespace as /proc/net shows it: interfaces (net/core/net-procfs.c dev_seq_show with
//! dev_get_stats(), /sys/class/net), their addresses (in_device, inet6_dev), TCP and UDP sockets from the
//! kernel's hash tables (net/ipv4/tcp_ipv4.c, udp.c, net/ipv6/*: /proc/net/tcp, tcp6, udp, udp6), unix
//! sockets (net/unix/af_unix.c unix_seq_show), /proc/net/sockstat, and each socket's owners from the fd tables.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::{Kernel, Member};
use crate::objects::file::{S_IFMT, S_IFSOCK};
use crate::objects::symbolize;
use crate::objects::{hlist_entries, hlist_nulls_entries, list_entries, per_cpu_sum, possible_cpus, Object};
use crate::records::{Hex, U64};
use crate::walkers::files::{each_process_fds, FdsOf};
use crate::walkers::Context;
use crate::{Error, Result};

crate::walker! {
    /// Interfaces (addresses, flags, MTU, counters as /proc/net/dev sums them), TCP and UDP sockets over IPv4
    /// and IPv6 from the kernel's hash tables (as /proc/net/tcp*, udp* list them), unix sockets with their
    /// paths, /proc/net/sockstat, and the processes holding each socket open.
    name: "net",
    options: NetOptions,
    record: NetInfo,
    run: walk,
}

/// include/linux/socket.h address families.
const AF_UNIX: u64 = 1;
const AF_INET: u64 = 2;
const AF_INET6: u64 = 10;
/// include/net/tcp_states.h.
const TCP_ESTABLISHED: u64 = 1;
const TCP_SYN_RECV: u64 = 3;
const TCP_TIME_WAIT: u64 = 6;
const TCP_LISTEN: u64 = 10;
const TCP_NEW_SYN_RECV: u64 = 12;
const TCP_STATES: [&str; 13] =
    ["", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"];
/// include/uapi/linux/net.h socket_state, the St column of /proc/net/unix; __SO_ACCEPTCON in its Flags.
const SS_UNCONNECTED: u64 = 1;
const SS_CONNECTING: u64 = 2;
const SS_CONNECTED: u64 = 3;
const SS_DISCONNECTING: u64 = 4;
const SO_ACCEPTCON: u32 = 1 << 16;
/// include/net/af_unix.h UNIX_HASH_SIZE (unchanged 6.1 – 6.12).
const UNIX_HASH_SIZE: u64 = 512;
/// Bounds: hash buckets believed, sockets per bucket, sockets in all, interfaces, addresses per interface.
const MAX_BUCKETS: u64 = 1 << 24;
const MAX_CHAIN: usize = 65_536;
const MAX_SOCKETS: usize = 1 << 20;
const MAX_DEVICES: usize = 65_536;
const MAX_ADDRESSES: usize = 4096;
/// sizeof(struct sockaddr_un) - offsetof(sun_path): the longest unix path.
const UNIX_PATH_MAX: i64 = 108;
/// include/linux/if.h IF_OPER_* names as /sys/class/net/X/operstate prints them.
const OPERSTATES: [&str; 7] = ["unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up"];

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct NetOptions {
    /// Only the sockets this process holds open (interfaces and sockstat are always listed).
    pub pid: Option<i32>,
}

/// A process holding a socket open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SocketOwner {
    pub pid: i32,
    pub comm: String,
    pub fd: u32,
}

/// A TCP or UDP socket, as one line of /proc/net/tcp, tcp6, udp or udp6.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InetSocket {
    /// tcp or udp.
    pub protocol: String,
    /// inet or inet6.
    pub family: String,
    /// The state name (LISTEN, ESTABLISHED …; unconnected UDP is CLOSE) and its number (the st column).
    pub state: String,
    pub state_code: u8,
    pub local_address: String,
    pub local_port: u16,
    pub remote_address: String,
    pub remote_port: u16,
    /// The tx_queue and rx_queue columns (TCP: unacknowledged and unread bytes, or a listener's accept
    /// backlog; UDP: allocated send and receive memory).
    pub tx_queue: u32,
    pub rx_queue: u32,
    pub uid: u32,
    /// The socket's inode (0 for TIME_WAIT and embryonic sockets).
    pub inode: u64,
    /// Processes with an fd on it (ss -p).
    pub owners: Vec<SocketOwner>,
    /// Kernel address of the struct sock.
    pub sock: Hex,
}

/// A unix socket, as one line of /proc/net/unix.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnixSocket {
    pub refcount: u32,
    /// The Flags column: __SO_ACCEPTCON (65536) for a listening socket.
    pub flags: u32,
    /// STREAM, DGRAM or SEQPACKET (the number when another).
    pub socket_type: String,
    /// LISTEN, or the St column's name: UNCONNECTED, CONNECTING, CONNECTED, DISCONNECTING.
    pub state: String,
    pub state_code: u8,
    pub inode: u64,
    /// The bound path; "@name" for an abstract one; None when unbound.
    pub path: Option<String>,
    pub owners: Vec<SocketOwner>,
    pub sock: Hex,
}

/// One address of an interface.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceAddress {
    /// inet or inet6.
    pub family: String,
    pub address: String,
    pub prefixlen: u32,
    /// IPv4: ifa_broadcast when set.
    pub broadcast: Option<String>,
    /// IPv6: the scope and flags /proc/net/if_inet6 prints (0x20 link, 0x10 host; IFA_F_* low byte).
    pub scope: Option<u32>,
    pub ifa_flags: Option<u32>,
}

/// The /proc/net/dev columns (node_exporter's node_network_*_total), as dev_get_stats() sums them.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InterfaceStats {
    pub rx_bytes: U64,
    pub rx_packets: u64,
    pub rx_errs: u64,
    /// rx_dropped + rx_missed_errors.
    pub rx_drop: u64,
    pub rx_fifo: u64,
    /// length + over + crc + frame errors.
    pub rx_frame: u64,
    pub rx_compressed: u64,
    pub rx_multicast: u64,
    pub tx_bytes: U64,
    pub tx_packets: u64,
    pub tx_errs: u64,
    pub tx_drop: u64,
    pub tx_fifo: u64,
    pub tx_colls: u64,
    /// carrier + aborted + window + heartbeat errors.
    pub tx_carrier: u64,
    pub tx_compressed: u64,
}

/// A network interface (struct net_device).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetInterface {
    pub name: String,
    pub ifindex: i32,
    /// dev_addr as /sys/class/net/X/address prints it, and the broadcast address.
    pub mac: String,
    pub broadcast: String,
    pub mtu: u32,
    /// dev->flags (IFF_UP 0x1, IFF_BROADCAST 0x2, IFF_LOOPBACK 0x8, IFF_NOARP 0x80 …), as /sys prints them.
    pub flags: u32,
    /// The IFF_* names of `flags`.
    pub flag_names: Vec<String>,
    /// /sys/class/net/X/operstate ("up", "down", "unknown" …).
    pub operstate: String,
    /// The carrier is up (netif_carrier_ok), when the device is running.
    pub carrier: Option<bool>,
    /// ARPHRD_* (1 ether, 772 loopback).
    pub link_type: u32,
    pub tx_queue_len: u32,
    pub addresses: Vec<InterfaceAddress>,
    /// None when the driver keeps its counters where nearfield does not read them (see statsSource).
    pub stats: Option<InterfaceStats>,
    /// Where the counters came from: "dev->stats", "lstats (loopback)", "lstats tx (dummy)", "dev->stats + tstats",
    /// "dev->stats + dstats", each "+ core_stats" when the core drop counters exist; or "unsupported: FUNCTION".
    pub stats_source: String,
    pub net_device: Hex,
}

/// /proc/net/sockstat and sockstat6 (node_exporter's node_sockstat_*).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SockStat {
    pub sockets_used: Option<i64>,
    pub tcp_inuse: Option<i64>,
    pub tcp_orphan: Option<i64>,
    pub tcp_tw: Option<i64>,
    pub tcp_alloc: Option<i64>,
    /// Pages.
    pub tcp_mem: Option<i64>,
    pub udp_inuse: Option<i64>,
    pub udp_mem: Option<i64>,
    pub raw_inuse: Option<i64>,
    pub tcp6_inuse: Option<i64>,
    pub udp6_inuse: Option<i64>,
    pub raw6_inuse: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct NetInfo {
    /// In the namespace's device list order.
    pub interfaces: Vec<NetInterface>,
    /// TCP (listening, then the established table), then UDP, as /proc/net lists them; IPv4 and IPv6 mixed
    /// in table order.
    pub sockets: Vec<InetSocket>,
    pub unix: Vec<UnixSocket>,
    pub sockstat: SockStat,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, o: &NetOptions) -> Result<NetInfo> {
    net_info(cx.kernel, o)
}

/// The whole view, or with `pid` only that process's sockets.
pub fn net_info(k: &Kernel, o: &NetOptions) -> Result<NetInfo> {
    let net = k.symbol("init_net")?;
    let l = SockLayout::of(k)?;
    let mut out = NetInfo::default();
    let owners = socket_owners(k, o.pid, &mut out.warnings);
    match interfaces(k, net) {
        Ok(i) => out.interfaces = i.into_items(&mut out.warnings),
        Err(e) => out.warnings.push(format!("interfaces: {e}")),
    }
    let keep = |inode: u64| o.pid.is_none() || owners.contains_key(&inode);
    let mut sockets = Vec::new();
    match tcp_sockets(k, &l, net, &mut out.warnings) {
        Ok(s) => sockets.extend(s),
        Err(e) => out.warnings.push(format!("tcp sockets: {e}")),
    }
    match udp_sockets(k, &l, net, &mut out.warnings) {
        Ok(s) => sockets.extend(s),
        Err(e) => out.warnings.push(format!("udp sockets: {e}")),
    }
    for mut s in sockets.into_iter().filter(|s| keep(s.inode)) {
        s.owners = owners.get(&s.inode).cloned().unwrap_or_default();
        out.sockets.push(s);
    }
    match unix_sockets(k, &l, net, &mut out.warnings) {
        Ok(u) => {
            for mut s in u.into_iter().filter(|s| keep(s.inode)) {
                s.owners = owners.get(&s.inode).cloned().unwrap_or_default();
                out.unix.push(s);
            }
        }
        Err(e) => out.warnings.push(format!("unix sockets: {e}")),
    }
    out.sockstat = sockstat(k, net, &mut out.warnings);
    Ok(out)
}

/// Socket inode → the processes (and fds) holding it, from every process's fd table.
fn socket_owners(k: &Kernel, pid: Option<i32>, warnings: &mut Vec<String>) -> HashMap<u64, Vec<SocketOwner>> {
    let mut owners: HashMap<u64, Vec<SocketOwner>> = HashMap::new();
    let (Ok(f_inode), Ok(i_mode), Ok(i_ino)) = (k.offset("file", "f_inode"), k.member("inode", "i_mode"), k.member("inode", "i_ino")) else {
        warnings.push("socket owners: struct file/inode members missing".into());
        return owners;
    };
    let visit = |p: &FdsOf, owners: &mut HashMap<u64, Vec<SocketOwner>>| {
        for fd in p.fds {
            let Ok(inode) = k.read_u64(fd.file.wrapping_add(f_inode)) else { continue };
            if k.read_member(inode, i_mode).is_ok_and(|m| m as u32 & S_IFMT == S_IFSOCK) {
                if let Ok(ino) = k.read_member(inode, i_ino) {
                    owners.entry(ino).or_default().push(SocketOwner { pid: p.pid, comm: p.comm.to_string(), fd: fd.fd });
                }
            }
        }
    };
    match each_process_fds(k, pid, |p| visit(p, &mut owners)) {
        Ok(w) => warnings.extend(w),
        Err(e) => warnings.push(format!("socket owners: {e}")),
    }
    owners
}

/// Offsets of what is read from sockets, resolved once (relative to the struct sock unless said otherwise).
pub(crate) struct SockLayout {
    sock_size: u64,
    daddr: u64,
    rcv_saddr: u64,
    dport: u64,
    num: u64,
    family: Member,
    state: Member,
    v6_daddr: Option<u64>,
    v6_rcv_saddr: Option<u64>,
    net: u64,
    refcnt: Member,
    listener: Option<u64>,
    nulls_node: u64,
    node: u64,
    socket: u64,
    uid: Member,
    ack_backlog: Member,
    wmem_alloc: Member,
    rmem_alloc: Member,
    sk_type: Member,
    sk_protocol: Member,
    inet_sport: u64,
    tcp: Option<[Member; 4]>,
    udp_forward_deficit: Option<Member>,
    tw_substate: Member,
    tw_sport: u64,
    unix_addr: Option<u64>,
    unix_address_len: u64,
    unix_address_name: u64,
    /// struct socket → sk, and the inode that embeds it (socket_alloc.vfs_inode), i_ino.
    socket_sk: u64,
    socket_inode: u64,
    i_ino: Member,
}

impl SockLayout {
    pub(crate) fn of(k: &Kernel) -> Result<SockLayout> {
        let sk = k.struct_type("sock")?;
        let c = |p: &str| sk.field(&format!("__sk_common.{p}"));
        let alloc = k.struct_type("socket_alloc")?;
        Ok(SockLayout {
            sock_size: sk.size,
            daddr: c("skc_daddr")?.offset,
            rcv_saddr: c("skc_rcv_saddr")?.offset,
            dport: c("skc_dport")?.offset,
            num: c("skc_num")?.offset,
            family: c("skc_family")?,
            state: c("skc_state")?,
            v6_daddr: c("skc_v6_daddr").ok().map(|m| m.offset),
            v6_rcv_saddr: c("skc_v6_rcv_saddr").ok().map(|m| m.offset),
            net: c("skc_net")?.offset,
            refcnt: c("skc_refcnt.refs.counter")?,
            listener: c("skc_listener").ok().map(|m| m.offset),
            nulls_node: c("skc_nulls_node")?.offset,
            node: c("skc_node")?.offset,
            socket: sk.field("sk_socket")?.offset,
            uid: sk.field_any(&["sk_uid.val", "sk_uid"])?,
            ack_backlog: sk.field("sk_ack_backlog")?,
            wmem_alloc: sk.field("sk_wmem_alloc.refs.counter")?,
            rmem_alloc: sk.field("sk_backlog.rmem_alloc.counter")?,
            sk_type: sk.field("sk_type")?,
            sk_protocol: sk.field("sk_protocol")?,
            inet_sport: k.offset("inet_sock", "inet_sport")?,
            tcp: (|| -> Result<[Member; 4]> {
                let t = |p: &str| k.member("tcp_sock", p);
                Ok([t("write_seq")?, t("snd_una")?, t("rcv_nxt")?, t("copied_seq")?])
            })()
            .ok(),
            udp_forward_deficit: k.types.member("udp_sock", "forward_deficit"),
            tw_substate: k.member("inet_timewait_sock", "tw_substate")?,
            tw_sport: k.offset("inet_timewait_sock", "tw_sport")?,
            unix_addr: k.types.member("unix_sock", "addr").map(|m| m.offset),
            unix_address_len: k.offset("unix_address", "len").unwrap_or(4),
            unix_address_name: k.offset("unix_address", "name").unwrap_or(8),
            socket_sk: k.offset("socket", "sk")?,
            socket_inode: alloc.field("vfs_inode")?.offset.wrapping_sub(alloc.field("socket")?.offset),
            i_ino: k.member("inode", "i_ino")?,
        })
    }

    /// sock_i_ino(): the inode of the struct socket that owns it, 0 when none.
    fn ino(&self, k: &Kernel, sk: &Object) -> Result<u64> {
        let socket = sk.ptr_at(self.socket)?;
        if socket == 0 {
            return Ok(0);
        }
        k.read_member(socket.wrapping_add(self.socket_inode), self.i_ino)
    }
}

/// in6_addr as RFC 5952 text with the longest run of ≥ 2 zero groups as "::" (how the truth and ss print
/// IPv6; IPv4-mapped addresses stay in hex groups).
fn ipv6_text(b: &[u8; 16]) -> String {
    let groups: Vec<u16> = (0..8).map(|i| u16::from_be_bytes([b[2 * i], b[2 * i + 1]])).collect();
    let (mut best, mut best_len) = (usize::MAX, 1);
    let mut i = 0;
    while i < 8 {
        if groups[i] != 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < 8 && groups[i] == 0 {
            i += 1;
        }
        if i - start > best_len {
            best = start;
            best_len = i - start;
        }
    }
    let hex = |g: &[u16]| g.iter().map(|x| format!("{x:x}")).collect::<Vec<_>>().join(":");
    if best == usize::MAX {
        return hex(&groups);
    }
    format!("{}::{}", hex(&groups[..best]), hex(&groups[best + best_len..]))
}

/// A __be32 as read little-endian from memory: its bytes are the address in network order.
fn ipv4_text(raw: u32) -> String {
    let b = raw.to_le_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

fn ntohs(raw: u64) -> u16 {
    (raw as u16).swap_bytes()
}

fn state_name(code: u64) -> String {
    TCP_STATES.get(code as usize).filter(|s| !s.is_empty()).map_or_else(|| code.to_string(), |s| s.to_string())
}

/// The common part every hashed socket starts with (struct sock_common): addresses, ports, family, state.
struct Endpoints {
    family: u64,
    state: u64,
    local: String,
    local_port: u16,
    remote: String,
    remote_port: u16,
}

fn endpoints(k: &Kernel, l: &SockLayout, o: &Object, sport: u16) -> Result<Endpoints> {
    let family = o.get(l.family)?;
    let state = o.get(l.state)?;
    let (local, remote) = if family == AF_INET6 {
        let (Some(s), Some(d)) = (l.v6_rcv_saddr, l.v6_daddr) else { return Err(Error::Unsupported("IPv6 addresses (no skc_v6_* members)".into())) };
        let v6 = |off: u64| -> Result<String> {
            let mut b = [0u8; 16];
            k.read(o.addr.wrapping_add(off), &mut b)?;
            Ok(ipv6_text(&b))
        };
        (v6(s)?, v6(d)?)
    } else {
        (ipv4_text(o.uint_at(l.rcv_saddr, 4)? as u32), ipv4_text(o.uint_at(l.daddr, 4)? as u32))
    };
    Ok(Endpoints { family, state, local, local_port: sport, remote, remote_port: ntohs(o.uint_at(l.dport, 2)?) })
}

fn family_name(f: u64) -> String {
    match f {
        AF_UNIX => "unix".into(),
        AF_INET => "inet".into(),
        AF_INET6 => "inet6".into(),
        16 => "netlink".into(),
        17 => "packet".into(),
        n => format!("af{n}"),
    }
}

/// Read the part of a hashed socket /proc/net/tcp* prints. `sk` may be a full socket, a TIME_WAIT socket
/// (inet_timewait_sock) or an embryonic one (request_sock), told apart by skc_state as the kernel does.
fn tcp_socket(k: &Kernel, l: &SockLayout, sk: u64) -> Result<InetSocket> {
    // The sock_common head is all a timewait or request sock shares with a full one.
    let common = Object::read(k, sk, l.nulls_node + 16)?;
    let state = common.get(l.state)?;
    let mut s = match state {
        TCP_TIME_WAIT => {
            let e = endpoints(k, l, &common, ntohs(k.read_uint(sk.wrapping_add(l.tw_sport), 2)?))?;
            let sub = k.read_member(sk, l.tw_substate)?;
            inet("tcp", e, sub, 0, 0, 0, 0)
        }
        TCP_NEW_SYN_RECV => {
            let e = endpoints(k, l, &common, common.uint_at(l.num, 2)? as u16)?;
            let listener = l.listener.map(|off| common.ptr_at(off)).transpose()?.unwrap_or(0);
            let uid = if listener == 0 { 0 } else { k.read_member(listener, l.uid)? as u32 };
            inet("tcp", e, TCP_SYN_RECV, 0, 0, uid, 0)
        }
        _ => {
            let o = Object::read(k, sk, l.sock_size)?;
            let e = endpoints(k, l, &o, ntohs(k.read_uint(sk.wrapping_add(l.inet_sport), 2)?))?;
            let [write_seq, snd_una, rcv_nxt, copied_seq] = l.tcp.ok_or_else(|| Error::NotFound("struct tcp_sock".into()))?;
            let read = |m: Member| k.read_member(sk, m).map(|v| v as u32);
            let tx = read(write_seq)?.wrapping_sub(read(snd_una)?);
            let rx = if state == TCP_LISTEN { o.get(l.ack_backlog)? as u32 } else { (read(rcv_nxt)?.wrapping_sub(read(copied_seq)?) as i32).max(0) as u32 };
            inet("tcp", e, state, tx, rx, o.get(l.uid)? as u32, l.ino(k, &o)?)
        }
    };
    s.sock = Hex(sk);
    Ok(s)
}

fn inet(protocol: &str, e: Endpoints, state: u64, tx_queue: u32, rx_queue: u32, uid: u32, inode: u64) -> InetSocket {
    InetSocket {
        protocol: protocol.into(),
        family: family_name(e.family),
        state: state_name(state),
        state_code: state as u8,
        local_address: e.local,
        local_port: e.local_port,
        remote_address: e.remote,
        remote_port: e.remote_port,
        tx_queue,
        rx_queue,
        uid,
        inode,
        owners: Vec::new(),
        sock: Hex(0),
    }
}

/// udp4_format_sock() / udp6: sk_wmem_alloc_get() and udp_rqueue_get() as the queues.
fn udp_socket(k: &Kernel, l: &SockLayout, sk: u64) -> Result<InetSocket> {
    let o = Object::read(k, sk, l.sock_size)?;
    let e = endpoints(k, l, &o, ntohs(k.read_uint(sk.wrapping_add(l.inet_sport), 2)?))?;
    let state = e.state;
    let tx = (o.int(l.wmem_alloc)? as i32).wrapping_sub(1);
    let deficit = l.udp_forward_deficit.map(|m| k.read_member_i64(sk, m)).transpose()?.unwrap_or(0) as i32;
    let rx = (o.int(l.rmem_alloc)? as i32).wrapping_sub(deficit);
    let mut s = inet("udp", e, state, tx as u32, rx as u32, o.get(l.uid)? as u32, l.ino(k, &o)?);
    s.sock = Hex(sk);
    Ok(s)
}

/// The socket lives in `net` and is IPv4 or IPv6 (seq_sk_match()).
fn in_net(k: &Kernel, l: &SockLayout, sk: u64, net: u64) -> bool {
    let fam = k.read_member(sk, l.family).unwrap_or(0);
    (fam == AF_INET || fam == AF_INET6) && k.read_u64(sk.wrapping_add(l.net)).is_ok_and(|n| n == net)
}

/// A hash table's bucket array, read in one piece and bounded.
fn buckets(k: &Kernel, base: u64, mask: u64, stride: u64, what: &str) -> Result<Vec<u8>> {
    let n = mask.checked_add(1).filter(|n| n.is_power_of_two() && *n <= MAX_BUCKETS).ok_or_else(|| Error::bad(format!("{what}: implausible mask {mask:#x}")))?;
    let mut b = vec![0u8; (n * stride) as usize];
    k.read(base, &mut b).map_err(|e| e.context(format!("{what} buckets at {base:#x}")))?;
    Ok(b)
}

/// /proc/net/tcp and tcp6: the listening hash (lhash2), then the established hash (ehash, which also
/// holds TIME_WAIT and embryonic sockets), both chains of hlist_nulls through skc_nulls_node.
fn tcp_sockets(k: &Kernel, l: &SockLayout, net: u64, warnings: &mut Vec<String>) -> Result<Vec<InetSocket>> {
    let row = net.wrapping_add(k.offset("net", "ipv4")?).wrapping_add(k.offset("netns_ipv4", "tcp_death_row")?);
    let hinfo = k.field(row, "inet_timewait_death_row", "hashinfo")?; // net->ipv4.tcp_death_row.hashinfo (6.1+)
    let h = k.struct_type("inet_hashinfo")?;
    let o = k.object(hinfo, &h)?;
    let mut heads = Vec::new();
    let ilb = k.struct_type("inet_listen_hashbucket")?;
    let (lhash2, lmask) = (o.get(h.field("lhash2")?)?, o.get(h.field("lhash2_mask")?)?);
    let nulls_off = ilb.field("nulls_head")?.offset;
    let lb = buckets(k, lhash2, lmask, ilb.size, "tcp lhash2")?;
    for i in 0..=lmask {
        let at = (i * ilb.size + nulls_off) as usize;
        if crate::bytes::le_u64(&lb, at).is_some_and(|first| first & 1 == 0) {
            heads.push(lhash2.wrapping_add(at as u64));
        }
    }
    let (ehash, emask) = (o.get(h.field("ehash")?)?, o.get(h.field("ehash_mask")?)?);
    let eb = buckets(k, ehash, emask, 8, "tcp ehash")?;
    for i in 0..=emask {
        if crate::bytes::le_u64(&eb, (i * 8) as usize).is_some_and(|first| first & 1 == 0) {
            heads.push(ehash.wrapping_add(i * 8));
        }
    }
    let mut out = Vec::new();
    for head in heads {
        for sk in hlist_nulls_entries(k, head, l.nulls_node, MAX_CHAIN, "tcp hash chain").into_items(warnings) {
            if out.len() >= MAX_SOCKETS {
                warnings.push(format!("tcp sockets: stopped after {MAX_SOCKETS}"));
                return Ok(out);
            }
            if !in_net(k, l, sk, net) {
                continue;
            }
            match tcp_socket(k, l, sk) {
                Ok(s) => out.push(s),
                Err(e) => warnings.push(format!("tcp socket {sk:#x} skipped: {e}")),
            }
        }
    }
    // /proc lists tcp before tcp6: keep the table order within each family
    out.sort_by_key(|s| s.family != "inet");
    Ok(out)
}

/// /proc/net/udp and udp6: every slot of the UDP hash (net->ipv4.udp_table since 6.2, the global
/// udp_table before), sockets on hlist chains through skc_node.
fn udp_sockets(k: &Kernel, l: &SockLayout, net: u64, warnings: &mut Vec<String>) -> Result<Vec<InetSocket>> {
    let table = match k.types.member("netns_ipv4", "udp_table") {
        Some(m) => k.read_u64(net.wrapping_add(k.offset("net", "ipv4")?).wrapping_add(m.offset))?,
        None => k.symbol("udp_table")?,
    };
    let t = k.struct_type("udp_table")?;
    let o = k.object(table, &t)?;
    let (hash, mask) = (o.get(t.field("hash")?)?, o.get(t.field("mask")?)?);
    let slot = k.struct_type("udp_hslot")?;
    let head_off = slot.field("head")?.offset;
    let b = buckets(k, hash, mask, slot.size, "udp_table")?;
    let mut out = Vec::new();
    for i in 0..=mask {
        let at = i * slot.size + head_off;
        if crate::bytes::le_u64(&b, at as usize).unwrap_or(0) == 0 {
            continue;
        }
        for sk in hlist_entries(k, hash.wrapping_add(at), l.node, MAX_CHAIN, "udp hash chain").into_items(warnings) {
            if out.len() >= MAX_SOCKETS {
                warnings.push(format!("udp sockets: stopped after {MAX_SOCKETS}"));
                return Ok(out);
            }
            if !in_net(k, l, sk, net) {
                continue;
            }
            match udp_socket(k, l, sk) {
                Ok(s) => out.push(s),
                Err(e) => warnings.push(format!("udp socket {sk:#x} skipped: {e}")),
            }
        }
    }
    out.sort_by_key(|s| s.family != "inet");
    Ok(out)
}

fn unix_type(t: u64) -> String {
    match t {
        1 => "STREAM".into(),
        2 => "DGRAM".into(),
        5 => "SEQPACKET".into(),
        n => n.to_string(),
    }
}

/// The socket_state unix_seq_show() prints for a unix sock.
fn unix_st(l: &SockLayout, o: &Object) -> Result<(u64, u64)> {
    let state = o.get(l.state)?;
    let has_socket = o.ptr_at(l.socket)? != 0;
    let st = match (has_socket, state == TCP_ESTABLISHED) {
        (true, true) => SS_CONNECTED,
        (true, false) => SS_UNCONNECTED,
        (false, true) => SS_CONNECTING,
        (false, false) => SS_DISCONNECTING,
    };
    Ok((state, st))
}

/// The bound name as unix_seq_show() prints it: a path without its NUL, or "@" and the abstract name with
/// NULs shown as '@'.
fn unix_path(k: &Kernel, l: &SockLayout, sk: u64) -> Result<Option<String>> {
    let Some(off) = l.unix_addr else { return Ok(None) };
    let addr = k.read_u64(sk.wrapping_add(off))?;
    if addr == 0 {
        return Ok(None);
    }
    let len = k.read_u32(addr.wrapping_add(l.unix_address_len))? as i32 as i64 - 2; // - offsetof(sun_path)
    if !(0..=UNIX_PATH_MAX).contains(&len) {
        return Err(Error::bad(format!("unix address at {addr:#x} has length {}", len + 2)));
    }
    let mut b = vec![0u8; len as usize];
    k.read(addr.wrapping_add(l.unix_address_name + 2), &mut b)?;
    let text: String = match b.first() {
        Some(0) => std::iter::once('@').chain(b[1..].iter().map(|&c| if c == 0 { '@' } else { c as char })).collect(),
        _ => b[..b.len().saturating_sub(1)].iter().map(|&c| if c == 0 { '@' } else { c as char }).collect(),
    };
    Ok(Some(text))
}

fn unix_socket(k: &Kernel, l: &SockLayout, sk: u64) -> Result<UnixSocket> {
    let o = Object::read(k, sk, l.sock_size)?;
    let (state, st) = unix_st(l, &o)?;
    let flags = if state == TCP_LISTEN { SO_ACCEPTCON } else { 0 };
    let state_name = if flags != 0 {
        "LISTEN".to_string()
    } else {
        match st {
            SS_UNCONNECTED => "UNCONNECTED",
            SS_CONNECTING => "CONNECTING",
            SS_CONNECTED => "CONNECTED",
            _ => "DISCONNECTING",
        }
        .to_string()
    };
    Ok(UnixSocket {
        refcount: o.get(l.refcnt)? as u32,
        flags,
        socket_type: unix_type(o.get(l.sk_type)?),
        state: state_name,
        state_code: st as u8,
        inode: l.ino(k, &o)?,
        path: unix_path(k, l, sk)?,
        owners: Vec::new(),
        sock: Hex(sk),
    })
}

/// /proc/net/unix: net->unx.table.buckets[0 .. UNIX_HASH_SIZE), sockets through sk_node.
fn unix_sockets(k: &Kernel, l: &SockLayout, net: u64, warnings: &mut Vec<String>) -> Result<Vec<UnixSocket>> {
    let table = net.wrapping_add(k.offset("net", "unx")?).wrapping_add(k.offset("netns_unix", "table")?);
    let buckets_ptr = k.field(table, "unix_table", "buckets")?;
    let b = buckets(k, buckets_ptr, UNIX_HASH_SIZE - 1, 8, "unix table")?;
    let mut out = Vec::new();
    for i in 0..UNIX_HASH_SIZE {
        if crate::bytes::le_u64(&b, (i * 8) as usize).unwrap_or(0) == 0 {
            continue;
        }
        for sk in hlist_entries(k, buckets_ptr.wrapping_add(i * 8), l.node, MAX_CHAIN, "unix hash chain").into_items(warnings) {
            if out.len() >= MAX_SOCKETS {
                warnings.push(format!("unix sockets: stopped after {MAX_SOCKETS}"));
                return Ok(out);
            }
            match unix_socket(k, l, sk) {
                Ok(s) => out.push(s),
                Err(e) => warnings.push(format!("unix socket {sk:#x} skipped: {e}")),
            }
        }
    }
    Ok(out)
}

/// A socket as lsof describes it: family, protocol, state and endpoints.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SocketSummary {
    /// unix, inet, inet6, netlink, packet …
    pub family: String,
    /// TCP, UDP, RAW …, or STREAM/DGRAM/SEQPACKET for unix sockets.
    pub protocol: String,
    pub state: String,
    /// address:port ([addr]:port for IPv6), or a unix socket's path.
    pub local: Option<String>,
    pub remote: Option<String>,
}

/// What lsof shows for a socket fd: `socket` is the struct socket (file->private_data of a sockfs file).
pub(crate) fn socket_summary(k: &Kernel, l: &SockLayout, socket: u64) -> Result<SocketSummary> {
    let sk = k.read_u64(socket.wrapping_add(l.socket_sk))?;
    if sk == 0 {
        return Ok(SocketSummary { family: "none".into(), protocol: "-".into(), state: "UNCONNECTED".into(), local: None, remote: None });
    }
    let o = Object::read(k, sk, l.sock_size)?;
    let family = o.get(l.family)?;
    let ty = o.get(l.sk_type)?;
    let proto = o.get(l.sk_protocol)?;
    match family {
        AF_UNIX => {
            let u = unix_socket(k, l, sk)?;
            Ok(SocketSummary { family: "unix".into(), protocol: u.socket_type, state: u.state, local: u.path, remote: None })
        }
        AF_INET | AF_INET6 => {
            let e = endpoints(k, l, &o, ntohs(k.read_uint(sk.wrapping_add(l.inet_sport), 2)?))?;
            let protocol = match (ty, proto) {
                (1, 6) => "TCP".to_string(),
                (2, 17) => "UDP".to_string(),
                (2, 136) => "UDPLITE".to_string(),
                (3, _) => "RAW".to_string(),
                (2, 1) | (2, 58) => "ICMP".to_string(),
                (_, p) => format!("proto{p}"),
            };
            let ep = |a: &str, p: u16| if e.family == AF_INET6 { format!("[{a}]:{p}") } else { format!("{a}:{p}") };
            let connected = e.remote_port != 0 || (e.remote != "0.0.0.0" && e.remote != "::");
            Ok(SocketSummary {
                family: family_name(family),
                state: state_name(e.state),
                local: Some(ep(&e.local, e.local_port)),
                remote: connected.then(|| ep(&e.remote, e.remote_port)),
                protocol,
            })
        }
        f => Ok(SocketSummary { family: family_name(f), protocol: unix_type(ty), state: state_name(o.get(l.state)?), local: None, remote: None }),
    }
}

/// include/uapi/linux/if.h net_device_flags, in bit order.
const IFF_NAMES: [&str; 19] = [
    "UP", "BROADCAST", "DEBUG", "LOOPBACK", "POINTOPOINT", "NOTRAILERS", "RUNNING", "NOARP", "PROMISC", "ALLMULTI", "MASTER", "SLAVE", "MULTICAST", "PORTSEL",
    "AUTOMEDIA", "DYNAMIC", "LOWER_UP", "DORMANT", "ECHO",
];

fn mac_text(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// The namespace's devices (for_each_netdev: net->dev_base_head through dev_list).
fn interfaces(k: &Kernel, net: u64) -> Result<crate::objects::Walk<NetInterface>> {
    let t = k.struct_type("net_device")?;
    let head = net.wrapping_add(k.offset("net", "dev_base_head")?);
    let devs = list_entries(k, head, t.field("dev_list")?.offset, MAX_DEVICES, "device list (net->dev_base_head)");
    let cpus = possible_cpus(k)?;
    let mut items = Vec::new();
    let mut warning = devs.warning;
    for dev in devs.items {
        match interface(k, &t, dev, &cpus) {
            Ok(i) => items.push(i),
            Err(e) => warning = Some(format!("{}net_device {dev:#x} skipped: {e}", warning.map(|w| format!("{w}; ")).unwrap_or_default())),
        }
    }
    Ok(crate::objects::Walk { items, warning })
}

fn interface(k: &Kernel, t: &crate::objects::StructType, dev: u64, cpus: &[u32]) -> Result<NetInterface> {
    let o = k.object(dev, t)?;
    let f = |p: &str| -> Result<u64> { o.get(t.field(p)?) };
    let name = o.cstr(t.field("name")?)?;
    let addr_len = (f("addr_len")? as usize).min(32);
    let mut mac = vec![0u8; addr_len];
    let dev_addr = t.field("dev_addr")?;
    if dev_addr.size == 8 && dev_addr.array_len.is_none() {
        // a pointer since 5.17 (const unsigned char *dev_addr)
        let p = o.get(dev_addr)?;
        if p != 0 {
            k.read(p, &mut mac)?;
        }
    } else {
        mac.copy_from_slice(o.bytes(dev_addr)?.get(..addr_len).ok_or_else(|| Error::bad("dev_addr shorter than addr_len"))?);
    }
    let broadcast = o.bytes(t.field("broadcast")?)?.get(..addr_len).map(mac_text).unwrap_or_default();
    let flags = f("flags")? as u32;
    let state = f("state")?;
    let bit = |e: &str| k.enumerator(e).ok().filter(|b| (0..64).contains(b)).map(|b| state & (1 << b) != 0);
    let running = bit("__LINK_STATE_START").unwrap_or(flags & 1 != 0);
    let carrier = bit("__LINK_STATE_NOCARRIER").map(|nc| !nc);
    let oper = f("operstate")? as usize;
    // /sys/class/net/X/operstate: "down" for a device that is not running, else operstates[]
    let operstate = if !running { "down".to_string() } else { OPERSTATES.get(oper).map_or_else(|| oper.to_string(), |s| s.to_string()) };
    let (stats, stats_source) = match interface_stats(k, t, &o, cpus) {
        Ok((s, src)) => (Some(s), src),
        Err(e) => (None, format!("unsupported: {e}")),
    };
    let mut addresses = ipv4_addresses(k, o.get(t.field("ip_ptr")?)?)?;
    addresses.extend(ipv6_addresses(k, o.get(t.field("ip6_ptr")?)?)?);
    Ok(NetInterface {
        name,
        ifindex: o.int(t.field("ifindex")?)? as i32,
        mac: mac_text(&mac),
        broadcast,
        mtu: f("mtu")? as u32,
        flags,
        flag_names: IFF_NAMES.iter().enumerate().filter(|(i, _)| flags & (1 << i) != 0).map(|(_, n)| n.to_string()).collect(),
        operstate,
        carrier: if running { carrier } else { None },
        link_type: f("type")? as u32,
        tx_queue_len: f("tx_queue_len")? as u32,
        addresses,
        stats,
        stats_source,
        net_device: Hex(dev),
    })
}

/// in_device.ifa_list → in_ifaddr.ifa_next.
fn ipv4_addresses(k: &Kernel, in_dev: u64) -> Result<Vec<InterfaceAddress>> {
    let mut out = Vec::new();
    if in_dev == 0 {
        return Ok(out);
    }
    let t = k.struct_type("in_ifaddr")?;
    let mut ifa = k.field(in_dev, "in_device", "ifa_list")?;
    let mut seen = std::collections::HashSet::new();
    while ifa != 0 {
        if out.len() >= MAX_ADDRESSES || !seen.insert(ifa) {
            return Err(Error::bad(format!("in_device {in_dev:#x}: address list loops or is too long")));
        }
        let o = k.object(ifa, &t)?;
        let bcast = o.get(t.field("ifa_broadcast")?)? as u32;
        out.push(InterfaceAddress {
            family: "inet".into(),
            address: ipv4_text(o.get(t.field("ifa_local")?)? as u32),
            prefixlen: o.get(t.field("ifa_prefixlen")?)? as u32,
            broadcast: (bcast != 0).then(|| ipv4_text(bcast)),
            scope: None,
            ifa_flags: None,
        });
        ifa = o.get(t.field("ifa_next")?)?;
    }
    Ok(out)
}

/// inet6_dev.addr_list of inet6_ifaddr (if_list), as /proc/net/if_inet6 prints each.
fn ipv6_addresses(k: &Kernel, idev: u64) -> Result<Vec<InterfaceAddress>> {
    if idev == 0 {
        return Ok(Vec::new());
    }
    let t = k.struct_type("inet6_ifaddr")?;
    let head = idev.wrapping_add(k.offset("inet6_dev", "addr_list")?);
    let ifas = list_entries(k, head, t.field("if_list")?.offset, MAX_ADDRESSES, "inet6_dev.addr_list").all()?;
    ifas.into_iter()
        .map(|a| {
            let o = k.object(a, &t)?;
            let mut b = [0u8; 16];
            b.copy_from_slice(o.bytes(t.field("addr")?)?.get(..16).ok_or_else(|| Error::bad("short in6_addr"))?);
            Ok(InterfaceAddress {
                family: "inet6".into(),
                address: ipv6_text(&b),
                prefixlen: o.get(t.field("prefix_len")?)? as u32,
                broadcast: None,
                scope: Some(o.get(t.field("scope")?)? as u32),
                ifa_flags: Some(o.get(t.field("flags")?)? as u32 & 0xff),
            })
        })
        .collect()
}

/// rtnl_link_stats64 in the order netdev_stats_to_stats64() copies net_device_stats into it.
#[derive(Default)]
struct Stats64 {
    v: HashMap<&'static str, u64>,
}

const STATS_FIELDS: [&str; 23] = [
    "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors", "rx_dropped", "tx_dropped", "multicast", "collisions", "rx_length_errors",
    "rx_over_errors", "rx_crc_errors", "rx_frame_errors", "rx_fifo_errors", "rx_missed_errors", "tx_aborted_errors", "tx_carrier_errors", "tx_fifo_errors",
    "tx_heartbeat_errors", "tx_window_errors", "rx_compressed", "tx_compressed",
];

impl Stats64 {
    fn add(&mut self, f: &'static str, v: u64) {
        let e = self.v.entry(f).or_default();
        *e = e.wrapping_add(v);
    }
    fn g(&self, f: &str) -> u64 {
        self.v.get(f).copied().unwrap_or(0)
    }
}

/// The sum of per-CPU u64 counters `fields` of the per-CPU struct `ty` at `pcpu`, into `into` under the names given.
fn add_per_cpu(k: &Kernel, cpus: &[u32], pcpu: u64, ty: &str, fields: &[(&str, &'static str)], into: &mut Stats64) -> Result<()> {
    if pcpu == 0 {
        return Err(Error::bad(format!("{ty}: no per-CPU counters allocated")));
    }
    for (member, name) in fields {
        let m = k.member(ty, member)?;
        into.add(name, per_cpu_sum(k, cpus, pcpu, m.offset, m.size.min(8), false)? as u64);
    }
    Ok(())
}

/// dev_get_stats() for the drivers nearfield knows: loopback and dummy (per-CPU lstats through their
/// ndo_get_stats64), dev_get_tstats64, the core's tstats/dstats (pcpu_stat_type, 6.6+ and backports), and
/// plain dev->stats; then the per-CPU core_stats drop counters.
fn interface_stats(k: &Kernel, t: &crate::objects::StructType, o: &Object, cpus: &[u32]) -> Result<(InterfaceStats, String)> {
    let ops = o.get(t.field("netdev_ops")?)?;
    let get64 = k.field(ops, "net_device_ops", "ndo_get_stats64")?;
    let get = k.field(ops, "net_device_ops", "ndo_get_stats")?;
    let mut s = Stats64::default();
    let dev_stats = |s: &mut Stats64| -> Result<()> {
        let base = t.field("stats")?.offset;
        for f in STATS_FIELDS {
            s.add(f, o.get(k.member("net_device_stats", f).map(|m| crate::kernel::Member { offset: m.offset + base, ..m })?)?);
        }
        Ok(())
    };
    let pcpu = o.get(t.field_any(&["lstats", "tstats", "dstats"])?)?;
    let lstats = [("bytes", "bytes"), ("packets", "packets")];
    let sw = [("rx_packets", "rx_packets"), ("rx_bytes", "rx_bytes"), ("tx_packets", "tx_packets"), ("tx_bytes", "tx_bytes")];
    let name_of = |f: u64| symbolize(k, f).filter(|s| s.offset == 0).map_or_else(|| format!("{f:#x}"), |s| s.name);
    let mut source = if get64 != 0 {
        match name_of(get64).as_str() {
            // drivers/net/loopback.c: dev_lstats_read() gives both directions
            "loopback_get_stats64" => {
                let mut l = Stats64::default();
                add_per_cpu(k, cpus, pcpu, "pcpu_lstats", &lstats, &mut l)?;
                for dir in ["rx", "tx"] {
                    s.add(if dir == "rx" { "rx_bytes" } else { "tx_bytes" }, l.g("bytes"));
                    s.add(if dir == "rx" { "rx_packets" } else { "tx_packets" }, l.g("packets"));
                }
                "lstats (loopback)".to_string()
            }
            // drivers/net/dummy.c: what it "sent"
            "dummy_get_stats64" => {
                let mut l = Stats64::default();
                add_per_cpu(k, cpus, pcpu, "pcpu_lstats", &lstats, &mut l)?;
                s.add("tx_bytes", l.g("bytes"));
                s.add("tx_packets", l.g("packets"));
                "lstats tx (dummy)".to_string()
            }
            "dev_get_tstats64" => {
                dev_stats(&mut s)?;
                add_per_cpu(k, cpus, pcpu, "pcpu_sw_netstats", &sw, &mut s)?;
                "dev->stats + tstats".to_string()
            }
            other => return Err(Error::Unsupported(format!("{other} (the driver's own ndo_get_stats64)"))),
        }
    } else if get != 0 {
        return Err(Error::Unsupported(format!("{} (the driver's own ndo_get_stats)", name_of(get))));
    } else {
        let kind = t.opt_field("pcpu_stat_type").map(|m| o.get(m)).transpose()?;
        let is = |e: &str| kind.is_some() && k.enumerator(e).ok() == kind.map(|v| v as i64);
        dev_stats(&mut s)?;
        if is("NETDEV_PCPU_STAT_TSTATS") {
            add_per_cpu(k, cpus, pcpu, "pcpu_sw_netstats", &sw, &mut s)?;
            "dev->stats + tstats".to_string()
        } else if is("NETDEV_PCPU_STAT_DSTATS") {
            let d = [("rx_packets", "rx_packets"), ("rx_bytes", "rx_bytes"), ("rx_drops", "rx_dropped"), ("tx_packets", "tx_packets"), ("tx_bytes", "tx_bytes"), ("tx_drops", "tx_dropped")];
            add_per_cpu(k, cpus, pcpu, "pcpu_dstats", &d, &mut s)?;
            "dev->stats + dstats".to_string()
        } else {
            "dev->stats".to_string()
        }
    };
    if let Some(cs) = t.opt_field("core_stats") {
        let p = o.get(cs)?;
        if p != 0 {
            let mut fields = vec![("rx_dropped", "rx_dropped"), ("tx_dropped", "tx_dropped"), ("rx_nohandler", "rx_nohandler")];
            if k.types.member("net_device_core_stats", "rx_otherhost_dropped").is_some() {
                fields.push(("rx_otherhost_dropped", "rx_otherhost_dropped"));
            }
            add_per_cpu(k, cpus, p, "net_device_core_stats", &fields, &mut s)?;
            source.push_str(" + core_stats");
        }
    }
    let g = |f: &str| s.g(f);
    Ok((
        InterfaceStats {
            rx_bytes: U64(g("rx_bytes")),
            rx_packets: g("rx_packets"),
            rx_errs: g("rx_errors"),
            rx_drop: g("rx_dropped").wrapping_add(g("rx_missed_errors")),
            rx_fifo: g("rx_fifo_errors"),
            rx_frame: g("rx_length_errors").wrapping_add(g("rx_over_errors")).wrapping_add(g("rx_crc_errors")).wrapping_add(g("rx_frame_errors")),
            rx_compressed: g("rx_compressed"),
            rx_multicast: g("multicast"),
            tx_bytes: U64(g("tx_bytes")),
            tx_packets: g("tx_packets"),
            tx_errs: g("tx_errors"),
            tx_drop: g("tx_dropped"),
            tx_fifo: g("tx_fifo_errors"),
            tx_colls: g("collisions"),
            tx_carrier: g("tx_carrier_errors").wrapping_add(g("tx_aborted_errors")).wrapping_add(g("tx_window_errors")).wrapping_add(g("tx_heartbeat_errors")),
            tx_compressed: g("tx_compressed"),
        },
        source,
    ))
}

/// net/ipv4/proc.c sockstat_seq_show() and net/ipv6/proc.c sockstat6_seq_show(): per-CPU in-use counts
/// by protocol (net->core.prot_inuse), orphans, TIME_WAIT buckets, allocated sockets and memory.
fn sockstat(k: &Kernel, net: u64, warnings: &mut Vec<String>) -> SockStat {
    let mut s = SockStat::default();
    let r = (|| -> Result<()> {
        let cpus = possible_cpus(k)?;
        let prot_inuse = k.read_u64(net.wrapping_add(k.offset("net", "core")?).wrapping_add(k.offset("netns_core", "prot_inuse")?))?;
        let all = k.member("prot_inuse", "all")?;
        let val = k.member("prot_inuse", "val")?;
        s.sockets_used = Some(per_cpu_sum(k, &cpus, prot_inuse, all.offset, 4, true)? as i32 as i64);
        // sock_prot_inuse_get(): val[prot->inuse_idx], negative sums shown as 0
        let inuse = |proto: &str| -> Option<i64> {
            let p = k.symbol(proto).ok()?;
            let idx = k.field(p, "proto", "inuse_idx").ok()?;
            (idx < val.array_len.unwrap_or(64)).then_some(())?;
            per_cpu_sum(k, &cpus, prot_inuse, val.offset + 4 * idx, 4, true).ok().map(|v| (v as i32).max(0) as i64)
        };
        s.tcp_inuse = inuse("tcp_prot");
        s.udp_inuse = inuse("udp_prot");
        s.raw_inuse = inuse("raw_prot");
        s.tcp6_inuse = inuse("tcpv6_prot");
        s.udp6_inuse = inuse("udpv6_prot");
        s.raw6_inuse = inuse("rawv6_prot");
        s.tcp_orphan = k.symbol("tcp_orphan_count").ok().and_then(|p| per_cpu_sum(k, &cpus, p, 0, 4, true).ok()).map(|v| v as i32 as i64);
        let row = net.wrapping_add(k.offset("net", "ipv4")?).wrapping_add(k.offset("netns_ipv4", "tcp_death_row")?);
        s.tcp_tw = k.field(row, "inet_timewait_death_row", "tw_refcount.refs.counter").ok().map(|v| v as u32 as i32 as i64 - 1);
        // percpu_counter_sum_positive(tcp_prot.sockets_allocated)
        s.tcp_alloc = (|| -> Result<i64> {
            let pc = k.symbol("tcp_sockets_allocated")?;
            let count = k.read_member_i64(pc, k.member("percpu_counter", "count")?)?;
            let counters = k.field(pc, "percpu_counter", "counters")?;
            Ok(count.wrapping_add(per_cpu_sum(k, &cpus, counters, 0, 4, true)?).max(0))
        })()
        .ok();
        let mem = |sym: &str| k.symbol(sym).and_then(|a| k.read_i64(a)).ok().map(|v| v.max(0));
        s.tcp_mem = mem("tcp_memory_allocated");
        s.udp_mem = mem("udp_memory_allocated");
        Ok(())
    })();
    if let Err(e) = r {
        warnings.push(format!("sockstat: {e}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_as_proc_and_ss_print_them() {
        assert_eq!(ipv4_text(0x0100_007f), "127.0.0.1");
        let mut b = [0u8; 16];
        b[15] = 1;
        assert_eq!(ipv6_text(&b), "::1");
        assert_eq!(ipv6_text(&[0; 16]), "::");
        let fe80 = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x6e, 0x66, 0xff, 0xfe, 0, 0, 1];
        assert_eq!(ipv6_text(&fe80), "fe80::6e:66ff:fe00:1");
        let one_zero = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1];
        assert_eq!(ipv6_text(&one_zero), "2001:db8:0:1:1:1:1:1", "a single zero group stays");
        let two_runs = [0x20, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(ipv6_text(&two_runs), "2001:0:0:1::1", "the longest run is compressed");
        assert_eq!(ntohs(0x591b), 7001);
        assert_eq!(state_name(10), "LISTEN");
        assert_eq!(state_name(99), "99");
    }

    use crate::walkers::testkit::Fake;

    /// sock_common at 0 (daddr 0, rcv_saddr 4, dport 12, num 14, family 16, state 18, net 48, listener 96,
    /// nulls_node/node 104, refcnt 128), sock to 256 (socket 160, uid 168, ack_backlog 172, wmem 176, rmem 180,
    /// type 184, protocol 186), inet_sport 200, tcp_sock seqs 208.., tw_substate 140, tw_sport 142.
    fn layout(f: &mut Fake) {
        f.size("sock", 256);
        for (p, o, s) in [
            ("__sk_common.skc_daddr", 0, 4), ("__sk_common.skc_rcv_saddr", 4, 4), ("__sk_common.skc_dport", 12, 2), ("__sk_common.skc_num", 14, 2),
            ("__sk_common.skc_family", 16, 2), ("__sk_common.skc_state", 18, 1), ("__sk_common.skc_net", 48, 8), ("__sk_common.skc_listener", 96, 8),
            ("__sk_common.skc_nulls_node", 104, 16), ("__sk_common.skc_node", 104, 16), ("__sk_common.skc_refcnt.refs.counter", 128, 4),
            ("sk_socket", 160, 8), ("sk_uid.val", 168, 4), ("sk_ack_backlog", 172, 4), ("sk_wmem_alloc.refs.counter", 176, 4),
            ("sk_backlog.rmem_alloc.counter", 180, 4), ("sk_type", 184, 2), ("sk_protocol", 186, 2),
        ] {
            f.member("sock", p, o, s, None);
        }
        f.member("inet_sock", "inet_sport", 200, 2, None);
        for (p, o) in [("write_seq", 208), ("snd_una", 212), ("rcv_nxt", 216), ("copied_seq", 220)] {
            f.member("tcp_sock", p, o, 4, None);
        }
        f.member("inet_timewait_sock", "tw_substate", 140, 1, None);
        f.member("inet_timewait_sock", "tw_sport", 142, 2, None);
        f.member("socket", "sk", 24, 8, None);
        f.size("socket_alloc", 256);
        f.member("socket_alloc", "socket", 0, 128, None);
        f.member("socket_alloc", "vfs_inode", 128, 128, None);
        f.member("inode", "i_ino", 64, 8, None);
    }

    fn sock(f: &mut Fake, state: u8, local: [u8; 4], lport: u16, remote: [u8; 4], rport: u16) -> u64 {
        let sk = f.alloc(256);
        f.put(sk, &remote);
        f.put(sk + 4, &local);
        f.put(sk + 12, &rport.to_be_bytes());
        f.put(sk + 14, &lport.to_le_bytes());
        f.put(sk + 16, &(AF_INET as u16).to_le_bytes());
        f.put(sk + 18, &[state]);
        sk
    }

    #[test]
    fn listening_timewait_and_embryonic_tcp_sockets_as_proc_net_tcp_prints_them() {
        let mut f = Fake::new(1 << 16);
        layout(&mut f);
        let lo = [127, 0, 0, 1];
        // a listener with 3 connections waiting to be accepted, owned by a socket whose inode is 4242
        let listen = sock(&mut f, TCP_LISTEN as u8, lo, 7001, [0; 4], 0);
        f.put(listen + 200, &7001u16.to_be_bytes());
        f.put_u32(listen + 172, 3);
        f.put_u32(listen + 168, 1000);
        let socket = f.alloc(256);
        f.put_u64(listen + 160, socket);
        f.put_u64(socket + 128 + 64, 4242);
        // TIME_WAIT: only sock_common, its port in tw_sport, the shown state in tw_substate
        let tw = sock(&mut f, TCP_TIME_WAIT as u8, lo, 0, lo, 7001);
        f.put(tw + 142, &40000u16.to_be_bytes());
        f.put(tw + 140, &[TCP_TIME_WAIT as u8]);
        // an embryonic connection: SYN_RECV, no inode, the listener's uid
        let req = sock(&mut f, TCP_NEW_SYN_RECV as u8, lo, 7001, lo, 40001);
        f.put_u64(req + 96, listen);
        let k = f.kernel();
        let l = SockLayout::of(&k).unwrap();
        let got = |sk| {
            let s = tcp_socket(&k, &l, sk).unwrap();
            (s.state, s.local_address, s.local_port, s.remote_address, s.remote_port, s.rx_queue, s.uid, s.inode)
        };
        assert_eq!(got(listen), ("LISTEN".into(), "127.0.0.1".into(), 7001, "0.0.0.0".into(), 0, 3, 1000, 4242));
        assert_eq!(got(tw), ("TIME_WAIT".into(), "127.0.0.1".into(), 40000, "127.0.0.1".into(), 7001, 0, 0, 0));
        assert_eq!(got(req), ("SYN_RECV".into(), "127.0.0.1".into(), 7001, "127.0.0.1".into(), 40001, 0, 1000, 0));
    }
}
