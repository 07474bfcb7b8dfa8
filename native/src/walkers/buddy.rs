//! /proc/buddyinfo as mm/vmstat.c frag_show_print() prints it: free_area[order].nr_free of each populated
//! zone of each online node (include/linux/mmzone.h, 6.1), plus a fragmentation summary.

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::Kernel;
use crate::objects::all_zones;
use crate::walkers::{Context, NoOptions};
use crate::{Error, Result};

crate::walker! {
    /// /proc/buddyinfo: free blocks per node, zone and order, and how fragmented free memory is.
    name: "buddyinfo",
    options: NoOptions,
    record: Buddyinfo,
    run: walk,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<Buddyinfo> {
    buddyinfo(cx.kernel)
}

const MAX_ORDERS: u64 = 64;
/// Orders at and above this hold blocks of 2 MiB or more (with 4 KiB pages): what THP and hugepages need.
pub const HIGH_ORDER: u32 = 9;

/// One populated zone of one online node.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuddyZone {
    pub node: u32,
    pub zone: String,
    /// nr_free per order 0..MAX_ORDER (blocks, not pages).
    pub free: Vec<u64>,
}

/// How fragmented free memory is.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BuddySummary {
    /// Free pages: Σ nr_free << order (equals MemFree / page size).
    pub free_pages: u64,
    pub free_bytes: u64,
    /// Largest order with at least one free block, over all zones, and that block's size.
    pub largest_order: Option<u32>,
    pub largest_block_bytes: Option<u64>,
    /// The order counted as "high" (blocks of 2 MiB or more with 4 KiB pages).
    pub high_order: u32,
    /// Share of free memory in blocks of order ≥ highOrder, percent.
    pub high_order_percent: f64,
}

/// /proc/buddyinfo plus a fragmentation summary.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Buddyinfo {
    pub zones: Vec<BuddyZone>,
    pub summary: BuddySummary,
    pub page_size: u64,
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
    let page = k.facts.page_size.max(4096);
    info.page_size = page;
    info.summary.free_pages = free_pages;
    info.summary.free_bytes = free_pages.saturating_mul(page);
    info.summary.largest_block_bytes = info.summary.largest_order.map(|o| page << o.min(40));
    info.summary.high_order = HIGH_ORDER;
    info.summary.high_order_percent = if free_pages == 0 { 0.0 } else { high_pages as f64 * 100.0 / free_pages as f64 };
    Ok(info)
}
