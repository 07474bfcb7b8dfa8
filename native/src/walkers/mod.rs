//! Walkers: finished records (tasks, meminfo, buddyinfo, uptime) computed from a discovered `Kernel`
//! the way the guest's own /proc files compute them.

pub mod buddy;
pub mod dmesg;
pub mod meminfo;
pub mod tasks;
pub mod uptime;

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod real;
