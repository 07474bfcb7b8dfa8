//! Walkers: finished records (tasks, meminfo, buddyinfo, uptime) computed from a discovered `Kernel`
//! the way the guest's own /proc files compute them.

pub mod buddy;
pub mod dmesg;
pub mod meminfo;
pub mod tasks;
pub mod uptime;
pub(crate) mod util;

#[cfg(any(test, feature = "fuzzing"))]
pub mod testkit;
#[cfg(test)]
mod real;
