//! NUMA nodes and memory zones (include/linux/mmzone.h): for_each_online_pgdat() over node_data[] and
//! node_states[N_ONLINE], and every zone of each node (pglist_data.node_zones[]).

use crate::kernel::Kernel;
use crate::{Error, Result};

/// MAX_NUMNODES when VMCOREINFO does not say (Debian: NODES_SHIFT 10).
const DEFAULT_MAX_NUMNODES: u64 = 1024;
const MAX_ZONES: u64 = 16;

/// One zone of one online node.
#[derive(Debug, Clone)]
pub struct ZoneRef {
    pub node: u32,
    pub address: u64,
    pub name: String,
    pub present_pages: u64,
}

/// (node id, pglist_data address) of every online node.
pub fn online_nodes(k: &Kernel) -> Result<Vec<(u32, u64)>> {
    let Ok(node_data) = k.symbol("node_data") else {
        // !CONFIG_NUMA: one node, contig_page_data
        return Ok(vec![(0, k.symbol("contig_page_data")?)]);
    };
    let max = k
        .facts
        .vmcoreinfo
        .get("LENGTH(node_data)")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(DEFAULT_MAX_NUMNODES)
        .clamp(1, 1 << 16);
    let mut ptrs = vec![0u8; (max * 8) as usize];
    k.read(node_data, &mut ptrs).map_err(|e| e.context("reading node_data[]"))?;
    // node_states[N_ONLINE] is a nodemask_t of MAX_NUMNODES bits
    let online = match (k.symbol("node_states"), k.enumerator("N_ONLINE")) {
        (Ok(states), Ok(n)) => {
            let mut mask = vec![0u8; max.div_ceil(8) as usize];
            let stride = max.div_ceil(64) * 8;
            k.read(states + n as u64 * stride, &mut mask).ok().map(|_| mask)
        }
        _ => None,
    };
    let node_id = k.member("pglist_data", "node_id")?;
    let mut nodes = Vec::new();
    for (nid, chunk) in ptrs.chunks_exact(8).enumerate() {
        let p = crate::bytes::le_u64(chunk, 0).unwrap_or(0);
        if p == 0 {
            continue;
        }
        if let Some(mask) = &online {
            if mask.get(nid / 8).is_none_or(|b| b & (1 << (nid % 8)) == 0) {
                continue;
            }
        }
        let id = k.read_member(p, node_id)?;
        if id != nid as u64 {
            return Err(Error::bad(format!("node_data[{nid}] at {p:#x} says node_id {id}")));
        }
        nodes.push((nid as u32, p));
    }
    if nodes.is_empty() {
        return Err(Error::bad("no online node in node_data[]"));
    }
    Ok(nodes)
}

/// Every zone of every online node (for_each_zone), populated or not.
pub fn all_zones(k: &Kernel) -> Result<Vec<ZoneRef>> {
    let zones_m = k.member("pglist_data", "node_zones")?;
    let zone_size = k.size_of("zone")?;
    if zone_size == 0 || zone_size > 1 << 20 {
        return Err(Error::bad(format!("struct zone size {zone_size} not plausible")));
    }
    let nzones = zones_m.array_len.unwrap_or(zones_m.size / zone_size.max(1)).min(MAX_ZONES);
    let name_off = k.offset("zone", "name")?;
    let present = k.member("zone", "present_pages")?;
    let mut out = Vec::new();
    for (nid, pgdat) in online_nodes(k)? {
        for z in 0..nzones {
            let address = pgdat.wrapping_add(zones_m.offset + z * zone_size);
            let name_ptr = k.read_u64(address.wrapping_add(name_off))?;
            let name = if name_ptr == 0 { format!("zone{z}") } else { k.read_cstr(name_ptr, 32)? };
            let present_pages = k.read_member(address, present)?;
            out.push(ZoneRef { node: nid, address, name, present_pages });
        }
    }
    Ok(out)
}
