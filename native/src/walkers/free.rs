//! Used and free memory as procps-ng 4 `free` computes them from /proc/meminfo (proc/sysinfo.c meminfo(),
//! free.c): used = total − available; buff/cache = Buffers + Cached + SReclaimable.

use schemars::JsonSchema;
use serde::Serialize;

use crate::walkers::meminfo::meminfo;
use crate::walkers::{Context, NoOptions};
use crate::Result;

crate::walker! {
    /// The figures of procps-ng 4 `free` (KiB), from the guest's /proc/meminfo computed outside it.
    name: "free",
    options: NoOptions,
    record: Free,
    run: walk,
}

/// The Mem: line, KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemLine {
    pub total_kib: u64,
    pub used_kib: u64,
    pub free_kib: u64,
    pub shared_kib: u64,
    pub buffers_kib: u64,
    /// Cached + SReclaimable (free -w's "cache").
    pub cache_kib: u64,
    /// buffers + cache.
    pub buff_cache_kib: u64,
    pub available_kib: u64,
}

/// The Swap: line, KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SwapLine {
    pub total_kib: u64,
    pub used_kib: u64,
    pub free_kib: u64,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Free {
    pub mem: MemLine,
    pub swap: SwapLine,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<Free> {
    let m = meminfo(cx.kernel)?;
    let g = |name: &str| m.get(name).unwrap_or(0);
    Ok(Free { mem: mem_line(&g, m.get("MemAvailable")), swap: swap_line(&g), warnings: m.warnings })
}

fn mem_line(g: &dyn Fn(&str) -> u64, available: Option<u64>) -> MemLine {
    let (total, free, buffers) = (g("MemTotal"), g("MemFree"), g("Buffers"));
    let cache = g("Cached").saturating_add(g("SReclaimable"));
    let buff_cache = buffers.saturating_add(cache);
    // procps: kernels before 3.14 have no MemAvailable; then free + buff/cache stands in
    let available = available.unwrap_or_else(|| free.saturating_add(buff_cache)).min(total.max(free));
    let used = match total.checked_sub(available) {
        Some(u) => u,
        None => total.saturating_sub(free).saturating_sub(buff_cache),
    };
    MemLine { total_kib: total, used_kib: used, free_kib: free, shared_kib: g("Shmem"), buffers_kib: buffers, cache_kib: cache, buff_cache_kib: buff_cache, available_kib: available }
}

fn swap_line(g: &dyn Fn(&str) -> u64) -> SwapLine {
    let (total, free) = (g("SwapTotal"), g("SwapFree"));
    SwapLine { total_kib: total, used_kib: total.saturating_sub(free), free_kib: free }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_is_total_minus_available_as_procps_4() {
        let fields = [("MemTotal", 1000), ("MemFree", 300), ("Buffers", 10), ("Cached", 200), ("SReclaimable", 40), ("Shmem", 5), ("SwapTotal", 50), ("SwapFree", 20)];
        let g = |n: &str| fields.iter().find(|f| f.0 == n).map_or(0, |f| f.1);
        let m = mem_line(&g, Some(600));
        assert_eq!((m.used_kib, m.buff_cache_kib, m.cache_kib, m.available_kib), (400, 250, 240, 600));
        // without MemAvailable (pre-3.14): free + buff/cache
        assert_eq!(mem_line(&g, None).available_kib, 550);
        assert_eq!(swap_line(&g), SwapLine { total_kib: 50, used_kib: 30, free_kib: 20 });
    }
}
