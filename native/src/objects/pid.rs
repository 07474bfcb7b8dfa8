//! Process ids as /proc prints them: struct pid → pid_nr_ns() (kernel/pid.c) in the namespace the guest's
//! /proc was mounted from (init_pid_ns, level 0), a task's group and session pids (include/linux/pid.h,
//! signal->pids[] since 4.19), and a task by its pid as find_task_by_pid_ns() finds it.

use super::{hlist_entries, idr_entries};
use crate::kernel::{Kernel, Member};
use crate::{Error, Result};

/// Where a struct pid keeps its number in the initial namespace: numbers[0].nr.
#[derive(Debug, Clone, Copy)]
pub struct PidLayout {
    /// struct pid.level: how deep the pid's namespace is (numbers[0] always exists).
    level: Member,
    /// Offset of numbers[0].nr in struct pid.
    nr: u64,
    nr_size: u64,
}

impl PidLayout {
    pub fn resolve(k: &Kernel) -> Result<PidLayout> {
        let numbers = k.member("pid", "numbers")?;
        let nr = k.member("upid", "nr")?;
        Ok(PidLayout { level: k.member("pid", "level")?, nr: numbers.offset.checked_add(nr.offset).ok_or_else(|| Error::bad("struct pid offsets overflow"))?, nr_size: nr.size })
    }

    /// pid_nr_ns(pid, &init_pid_ns): the number /proc shows, or 0 for no pid (a NULL struct pid *), as
    /// the kernel prints it.
    pub fn nr(&self, k: &Kernel, pid: u64) -> Result<i32> {
        if pid == 0 {
            return Ok(0);
        }
        // numbers[0] exists at every level; a negative level is not a struct pid.
        let level = k.read_member_i64(pid, self.level)?;
        if level < 0 {
            return Err(Error::bad(format!("struct pid at {pid:#x} has level {level}")));
        }
        Ok(k.read_uint(pid.wrapping_add(self.nr), self.nr_size)? as u32 as i32)
    }
}

/// enum pid_type indexes of signal->pids[] (PIDTYPE_PGID, PIDTYPE_SID), from the kernel's own enum.
#[derive(Debug, Clone, Copy)]
pub struct GroupPids {
    /// Offsets of signal_struct.pids[PIDTYPE_PGID] and [PIDTYPE_SID].
    pub pgid: u64,
    pub sid: u64,
}

impl GroupPids {
    /// None on kernels before 4.19, whose group pids hang off the group leader's task_struct instead.
    pub fn resolve(k: &Kernel) -> Option<GroupPids> {
        let pids = k.types.member("signal_struct", "pids")?;
        let slot = |name: &str| -> Option<u64> {
            let i = u64::try_from(k.types.enumerator(name)?).ok()?;
            let at = i.checked_mul(8)?;
            (at.checked_add(8)? <= pids.size).then_some(pids.offset + at)
        };
        Some(GroupPids { pgid: slot("PIDTYPE_PGID")?, sid: slot("PIDTYPE_SID")? })
    }
}

/// The task_struct of `nr` in init_pid_ns.
pub fn find_task_by_pid(k: &Kernel, nr: u64) -> Result<u64> {
    let idr = k.symbol("init_pid_ns")?.wrapping_add(k.offset("pid_namespace", "idr")?);
    // The IDR is walked in index order: at most nr + 1 entries lie at or below nr.
    let bound = usize::try_from(nr).unwrap_or(usize::MAX).saturating_add(1).min(1 << 22);
    let pids = idr_entries(k, idr, bound, "init_pid_ns.idr").items;
    let pid = pids.iter().find(|e| e.index == nr).ok_or_else(|| Error::NotFound(format!("no pid {nr} in init_pid_ns")))?.entry;
    let tasks = k.offset("pid", "tasks")?; // tasks[PIDTYPE_PID] is the first
    let link = k.offset("task_struct", "pid_links")?;
    hlist_entries(k, pid.wrapping_add(tasks), link, 4, "pid->tasks[PIDTYPE_PID]")
        .items
        .first()
        .copied()
        .ok_or_else(|| Error::NotFound(format!("pid {nr} has no task")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    #[test]
    fn pid_numbers_in_the_initial_namespace() {
        let mut f = Fake::new(1 << 16);
        f.member("pid", "level", 4, 4, None);
        f.member("pid", "numbers", 0x40, 16, Some(1));
        f.member("upid", "nr", 0, 4, None);
        f.member("signal_struct", "pids", 0x100, 32, Some(4));
        f.enumerator("PIDTYPE_PGID", 2);
        f.enumerator("PIDTYPE_SID", 3);
        let p = f.alloc(0x60);
        f.put_u32(p + 0x40, 4242);
        let bad = f.alloc(0x60);
        f.put_u32(bad + 4, u32::MAX);
        let k = f.kernel();
        let l = PidLayout::resolve(&k).unwrap();
        assert_eq!(l.nr(&k, p).unwrap(), 4242);
        assert_eq!(l.nr(&k, 0).unwrap(), 0, "no pid prints as 0");
        assert!(l.nr(&k, bad).is_err(), "a negative level is refused");
        assert!(l.nr(&k, 0x10).is_err(), "an unmapped pid is an error, not a panic");
        let g = GroupPids::resolve(&k).unwrap();
        assert_eq!((g.pgid, g.sid), (0x110, 0x118));
    }

    #[test]
    fn group_pids_outside_the_array_are_refused() {
        let mut f = Fake::new(1 << 12);
        f.member("signal_struct", "pids", 0x100, 16, Some(2));
        f.enumerator("PIDTYPE_PGID", 2);
        f.enumerator("PIDTYPE_SID", 3);
        assert!(GroupPids::resolve(&f.kernel()).is_none());
    }
}
