//! /proc/buddyinfo as mm/vmstat.c frag_show_print() prints it: free_area[order].nr_free of each populated
//! zone of each online node (include/linux/mmzone.h, 6.1), plus a fragmentation summary.

use crate::kernel::Kernel;
use crate::{Error, Result};

/// MAX_NUMNODES when VMCOREINFO does not say (Debian: NODES_SHIFT 10).
const DEFAULT_MAX_NUMNODES: u64 = 1024;
const MAX_ZONES: u64 = 16;
const MAX_ORDERS: u64 = 64;
/// Orders at and above this hold blocks of 2 MiB or more (with 4 KiB pages): what THP and hugepages need.
pub const HIGH_ORDER: u32 = 9;

/// One zone of one online node.
#[derive(Debug, Clone)]
pub struct ZoneRef {
    pub node: u32,
    pub address: u64,
    pub name: String,
    pub present_pages: u64,
}

#[derive(Debug, Clone)]
pub struct BuddyZone {
    pub node: u32,
    pub zone: String,
    /// nr_free per order 0..MAX_ORDER (blocks, not pages).
    pub free: Vec<u64>,
}

#[derive(Debug, Clone, Default)]
pub struct BuddySummary {
    /// Free pages: Σ nr_free << order.
    pub free_pages: u64,
    /// Largest order with at least one free block, over all zones.
    pub largest_order: Option<u32>,
    /// Share of free memory in blocks of order ≥ HIGH_ORDER, percent.
    pub high_order_percent: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Buddyinfo {
    pub zones: Vec<BuddyZone>,
    pub summary: BuddySummary,
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
        let p = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
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

pub fn buddyinfo(k: &Kernel) -> Result<Buddyinfo> {
    let fa = k.member("zone", "free_area")?;
    let fa_size = k.size_of("free_area")?;
    if fa_size == 0 || fa_size > 4096 {
        return Err(Error::bad(format!("struct free_area size {fa_size} not plausible")));
    }
    let orders = fa.array_len.unwrap_or(fa.size / fa_size.max(1));
    if orders == 0 || orders > MAX_ORDERS {
        return Err(Error::bad(format!("zone.free_area has {orders} orders")));
    }
    let nr_free = k.member("free_area", "nr_free")?;
    let mut info = Buddyinfo::default();
    let (mut free_pages, mut high_pages) = (0u64, 0u64);
    for zone in all_zones(k)? {
        if zone.present_pages == 0 {
            continue; // populated_zone()
        }
        let mut free = Vec::with_capacity(orders as usize);
        for order in 0..orders {
            let n = k.read_member(zone.address.wrapping_add(fa.offset + order * fa_size), nr_free)?;
            let pages = n.saturating_mul(1 << order);
            free_pages = free_pages.saturating_add(pages);
            if order as u32 >= HIGH_ORDER {
                high_pages = high_pages.saturating_add(pages);
            }
            if n > 0 {
                let o = order as u32;
                info.summary.largest_order = Some(info.summary.largest_order.map_or(o, |m| m.max(o)));
            }
            free.push(n);
        }
        info.zones.push(BuddyZone { node: zone.node, zone: zone.name, free });
    }
    info.summary.free_pages = free_pages;
    info.summary.high_order_percent = if free_pages == 0 { 0.0 } else { high_pages as f64 * 100.0 / free_pages as f64 };
    Ok(info)
}
