//! Used and free memory as procps-ng 4.0 `free` computes them from /proc/meminfo (library/meminfo.c
//! meminfo_read_failed(), src/free.c): used = total − available; buff/cache = Buffers + Cached + SReclaimable.

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

/// free -l's Low: and High: lines, KiB.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LohiLine {
    pub total_kib: u64,
    pub used_kib: u64,
    pub free_kib: u64,
}

/// free -v's Comm: line, KiB: CommitLimit, Committed_AS, and the limit less what is committed (negative when
/// the guest has overcommitted past it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitLine {
    pub limit_kib: u64,
    pub committed_kib: u64,
    pub left_kib: i64,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Free {
    pub mem: MemLine,
    pub swap: SwapLine,
    /// Low and high memory (-l): without highmem (64-bit), Low is all of RAM and High is zero.
    pub low: LohiLine,
    pub high: LohiLine,
    pub commit: CommitLine,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<Free> {
    let m = meminfo(cx.kernel)?;
    let g = |name: &str| m.get(name).unwrap_or(0);
    let (low, high) = lohi_lines(&g);
    Ok(Free { mem: mem_line(&g), swap: swap_line(&g), low, high, commit: commit_line(&g), warnings: m.warnings })
}

fn mem_line(g: &dyn Fn(&str) -> u64) -> MemLine {
    let (total, free, buffers) = (g("MemTotal"), g("MemFree"), g("Buffers"));
    let cache = g("Cached").saturating_add(g("SReclaimable"));
    let buff_cache = buffers.saturating_add(cache);
    // procps 4: no MemAvailable (before 3.14), or one larger than the total (a container's view), reads as MemFree
    let mut available = g("MemAvailable");
    if available == 0 || available > total {
        available = free;
    }
    let used = match total.checked_sub(available) {
        Some(u) => u,
        None => total.saturating_sub(free),
    };
    MemLine { total_kib: total, used_kib: used, free_kib: free, shared_kib: g("Shmem"), buffers_kib: buffers, cache_kib: cache, buff_cache_kib: buff_cache, available_kib: available }
}

/// procps: LowTotal/LowFree are MemTotal/MemFree when the kernel has no highmem fields; "used" only when free < total.
fn lohi_lines(g: &dyn Fn(&str) -> u64) -> (LohiLine, LohiLine) {
    let (mut low_total, mut low_free) = (g("LowTotal"), g("LowFree"));
    if low_total == 0 {
        (low_total, low_free) = (g("MemTotal"), g("MemFree"));
    }
    let (high_total, high_free) = (g("HighTotal"), g("HighFree"));
    let line = |total: u64, free: u64| LohiLine { total_kib: total, used_kib: total.saturating_sub(free), free_kib: free };
    (line(low_total, low_free), line(high_total, high_free))
}

fn commit_line(g: &dyn Fn(&str) -> u64) -> CommitLine {
    let (limit, committed) = (g("CommitLimit"), g("Committed_AS"));
    CommitLine { limit_kib: limit, committed_kib: committed, left_kib: (limit as i128 - committed as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64 }
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
        let with = |avail: u64| move |n: &str| if n == "MemAvailable" { avail } else { g(n) };
        let m = mem_line(&with(600));
        assert_eq!((m.used_kib, m.buff_cache_kib, m.cache_kib, m.available_kib), (400, 250, 240, 600));
        // without MemAvailable (pre-3.14), or with one above the total: MemFree, as procps 4 reads it
        assert_eq!(mem_line(&with(0)).available_kib, 300);
        assert_eq!(mem_line(&with(1001)).available_kib, 300);
        assert_eq!(swap_line(&g), SwapLine { total_kib: 50, used_kib: 30, free_kib: 20 });
        let (low, high) = lohi_lines(&g);
        assert_eq!((low.total_kib, low.used_kib, low.free_kib, high.total_kib), (1000, 700, 300, 0));
        let over = |n: &str| match n { "CommitLimit" => 100, "Committed_AS" => 130, _ => 0 };
        assert_eq!(commit_line(&over).left_kib, -30);
    }
}
