//! Kernel-object access for walkers: members by BTF name resolved once per walk, container_of, struct
//! copies, and bounded iteration over the kernel's linked structures (include/linux/list.h, rbtree.h,
//! maple_tree.h, xarray.h, idr.h), per-CPU variables, sequence counters (seqlock.h) and d_path (fs/d_path.c).
//!
//! Every bound, cycle and consistency check a walker relies on lives here, once: a walker never loops
//! over guest pointers itself. Iterators return what they read plus why they stopped early (`Walk`),
//! so one damaged node costs the rest of that structure, not the command.

pub mod dpath;
pub mod fdtable;
pub mod file;
pub mod fields;
pub mod list;
pub mod locks;
pub mod maple;
pub mod mmzone;
pub mod modules;
pub mod orc;
pub mod percpu;
pub mod pid;
pub mod rbtree;
pub mod runqueue;
pub mod seqcount;
pub mod symbolize;
pub mod taint;
pub mod taskstack;
pub mod unwind;
pub mod usermem;
pub mod xarray;

pub use fields::{latin1, Object, StructType};
pub use list::{hlist_entries, hlist_nulls_entries, list_entries, list_nodes};
pub use maple::{maple_entries, MapleEntry};
pub use mmzone::{all_zones, online_nodes, ZoneRef};
pub use percpu::{cpus_in_mask, online_cpus, per_cpu_ptr, per_cpu_sum, possible_cpus};
pub use rbtree::rbtree_entries;
pub use seqcount::read_seqcount;
pub use symbolize::{symbolize, Symbolized};
pub use xarray::{idr_entries, xa_entries, XaEntry};

/// The result of a bounded walk: what was read, and why the walk stopped early (None: it ended normally).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk<T> {
    pub items: Vec<T>,
    pub warning: Option<String>,
}

impl<T> Walk<T> {
    pub fn complete(items: Vec<T>) -> Self {
        Walk { items, warning: None }
    }

    pub fn stopped(items: Vec<T>, what: &str, why: impl std::fmt::Display) -> Self {
        Walk { items, warning: Some(format!("{what}: {why}")) }
    }

    /// The items when the walk completed, else its warning as BAD_DATA (for callers that need all or nothing).
    pub fn all(self) -> crate::Result<Vec<T>> {
        match self.warning {
            None => Ok(self.items),
            Some(w) => Err(crate::Error::bad(w)),
        }
    }

    /// The items, moving the warning (if any) into `warnings`.
    pub fn into_items(self, warnings: &mut Vec<String>) -> Vec<T> {
        warnings.extend(self.warning);
        self.items
    }
}

/// `atomic_long_t`/`atomic_t` counters read as the kernel's global_*_page_state does: negative → 0.
pub fn clamp_nonneg(v: i64) -> u64 {
    if v < 0 { 0 } else { v as u64 }
}
