//! What a blocked task waits on, where the kernel records it: the mutex or rw_semaphore whose wait list
//! holds the waiter the sleeper put on its own stack (kernel/locking/mutex.c struct mutex_waiter, rwsem.c
//! struct rwsem_waiter), the lock's owner word with its flag bits masked (MUTEX_FLAGS, RWSEM_OWNER_FLAGS_MASK),
//! and frozen superblocks (fs/super.c freeze_super, sb->s_writers) whose percpu_rw_semaphores hold the
//! waiters of sb_start_write (kernel/locking/percpu-rwsem.c percpu_rwsem_wait), 6.1 and 6.12.

use std::collections::HashSet;

use super::list::list_nodes;
use super::unwind::Stack;
use crate::kernel::Kernel;
use crate::Result;

/// include/linux/mutex.h (kernel/locking/mutex.c MUTEX_FLAGS): the owner word's low bits are flags.
pub const MUTEX_FLAGS: u64 = 0x07;
/// kernel/locking/rwsem.c: owner bits RWSEM_READER_OWNED, RWSEM_NONSPINNABLE; count bits.
pub const RWSEM_READER_OWNED: u64 = 1 << 0;
pub const RWSEM_OWNER_FLAGS_MASK: u64 = 0x3;
pub const RWSEM_WRITER_LOCKED: u64 = 1 << 0;
pub const RWSEM_READER_SHIFT: u32 = 8;
/// enum rwsem_waiter_type: RWSEM_WAITING_FOR_WRITE 0, RWSEM_WAITING_FOR_READ 1.
const RWSEM_WAITING_FOR_READ: u64 = 1;
/// Waiters on one lock we believe in.
const MAX_WAITERS: usize = 100_000;
/// Places on a stack that name the task and are tried as its waiter (a real one is found at once).
const MAX_WAITER_CANDIDATES: usize = 16;
/// include/linux/fs.h enum: SB_UNFROZEN 0 … SB_FREEZE_COMPLETE 4, and SB_FREEZE_LEVELS 3 semaphores.
pub const SB_FREEZE_COMPLETE: u64 = 4;
const SB_FREEZE_LEVELS: u64 = 3;
const MAX_SUPERBLOCKS: usize = 100_000;

/// Which kind of sleeping lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Mutex,
    RwSem,
}

/// A lock a task is queued on, read from its wait list and owner word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockWait {
    pub kind: LockKind,
    pub lock: u64,
    /// The waiter wants to write (rwsem) — false for read; always true for a mutex.
    pub exclusive: bool,
    /// The owner word's task (flags masked); for a reader-owned rwsem, the last reader to take it (a hint).
    pub owner: Option<u64>,
    /// rwsem: held for write (WRITER_LOCKED), or by this many readers.
    pub writer_locked: bool,
    pub readers: u64,
    /// Tasks queued ahead of this waiter, in order.
    pub queued_behind: Vec<u64>,
}

/// Field offsets of the waiter and lock structures.
struct WaiterLayout {
    list: u64,
    task: u64,
    kind_field: Option<(u64, u64)>,
    lock_wait_list: u64,
    lock_owner: u64,
    lock_count: Option<u64>,
}

fn layout(k: &Kernel, kind: LockKind) -> Result<WaiterLayout> {
    Ok(match kind {
        LockKind::Mutex => WaiterLayout {
            list: k.offset("mutex_waiter", "list")?,
            task: k.offset("mutex_waiter", "task")?,
            kind_field: None,
            lock_wait_list: k.offset("mutex", "wait_list")?,
            lock_owner: k.offset("mutex", "owner")?,
            lock_count: None,
        },
        LockKind::RwSem => {
            let ty = k.member("rwsem_waiter", "type")?;
            WaiterLayout {
                list: k.offset("rwsem_waiter", "list")?,
                task: k.offset("rwsem_waiter", "task")?,
                kind_field: Some((ty.offset, ty.size)),
                lock_wait_list: k.offset("rw_semaphore", "wait_list")?,
                lock_owner: k.offset("rw_semaphore", "owner")?,
                lock_count: Some(k.offset("rw_semaphore", "count")?),
            }
        }
    })
}

/// The lock `task` waits on: a waiter of `kind` on its stack that names it and sits on a consistent list
/// whose one non-waiter node is the lock's wait_list. `tasks`: every task address (to tell waiters from
/// the head). None when no such waiter is found.
pub fn lock_waited_on(k: &Kernel, kind: LockKind, task: u64, stack: &Stack, sp: u64, tasks: &HashSet<u64>) -> Option<LockWait> {
    let l = layout(k, kind).ok()?;
    let mut at = sp.max(stack.lo) & !7;
    let mut candidates = 0;
    while at.checked_add(8).is_some_and(|e| e <= stack.hi) && candidates < MAX_WAITER_CANDIDATES {
        let here = at;
        at += 8;
        if stack_word(stack, here) != Some(task) {
            continue;
        }
        candidates += 1;
        let waiter = here.wrapping_sub(l.task);
        let node = waiter.wrapping_add(l.list);
        let (Some(next), Some(prev)) = (word(k, stack, node), word(k, stack, node.wrapping_add(8))) else { continue };
        // a real waiter is on a list: its neighbours point back at it
        if word(k, stack, next.wrapping_add(8)) != Some(node) || word(k, stack, prev) != Some(node) {
            continue;
        }
        let walk = list_nodes(k, node, MAX_WAITERS, "lock wait list");
        // the nodes after ours, then round through the head to the ones before ours
        let mut head = None;
        let mut ahead = Vec::new();
        let mut after_head = false;
        for n in walk.items {
            let who = k.read_u64(n.wrapping_sub(l.list).wrapping_add(l.task)).ok();
            match who.filter(|w| tasks.contains(w)) {
                Some(w) if after_head => ahead.push(w),
                Some(_) => {}
                None if head.is_none() => {
                    head = Some(n);
                    after_head = true;
                }
                None => return None, // two non-waiters: not a lock's wait list
            }
        }
        let head = head?;
        let lock = head.wrapping_sub(l.lock_wait_list);
        let owner_word = k.read_u64(lock.wrapping_add(l.lock_owner)).ok()?;
        let mut out = LockWait { kind, lock, exclusive: true, owner: None, writer_locked: false, readers: 0, queued_behind: ahead };
        match kind {
            LockKind::Mutex => {
                let owner = owner_word & !MUTEX_FLAGS;
                out.owner = (owner != 0).then_some(owner);
                out.writer_locked = owner != 0;
            }
            LockKind::RwSem => {
                let count = l.lock_count.and_then(|c| k.read_u64(lock.wrapping_add(c)).ok()).unwrap_or(0);
                out.writer_locked = count & RWSEM_WRITER_LOCKED != 0;
                out.readers = count >> RWSEM_READER_SHIFT;
                let owner = owner_word & !RWSEM_OWNER_FLAGS_MASK;
                out.owner = (owner != 0).then_some(owner);
                if let Some((off, size)) = l.kind_field {
                    out.exclusive = k.read_uint(waiter.wrapping_add(off), size).ok()? != RWSEM_WAITING_FOR_READ;
                }
                if owner_word & RWSEM_READER_OWNED != 0 && out.writer_locked {
                    return None; // both a writer and reader-owned: not an rwsem
                }
            }
        }
        return Some(out);
    }
    None
}

fn stack_word(s: &Stack, addr: u64) -> Option<u64> {
    if !s.contains(addr, 8) {
        return None;
    }
    s.word_at(addr)
}

/// A word from the task's stack copy when it lies there, else from guest memory.
fn word(k: &Kernel, s: &Stack, addr: u64) -> Option<u64> {
    stack_word(s, addr).or_else(|| k.read_u64(addr).ok())
}

/// A frozen superblock and the tasks waiting at each freeze level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenSuper {
    pub sb: u64,
    /// s_writers.frozen: 1 write, 2 page faults, 3 fs, 4 complete.
    pub level: u64,
    /// (task, freeze level it waits at: 1 sb_start_write, 2 sb_start_pagefault, 3 sb_start_intwrite).
    pub waiters: Vec<(u64, u64)>,
}

/// Every superblock on `super_blocks` whose s_writers.frozen is set, with the tasks queued on its
/// s_writers.rw_sem[] waitqueues (wait_queue_entry.private is the task).
pub fn frozen_superblocks(k: &Kernel, warnings: &mut Vec<String>) -> Result<Vec<FrozenSuper>> {
    let head = k.symbol("super_blocks")?;
    let s_list = k.offset("super_block", "s_list")?;
    let frozen = k.member("super_block", "s_writers.frozen")?;
    let rw_sem = k.member("super_block", "s_writers.rw_sem")?;
    let sem_size = k.size_of("percpu_rw_semaphore")?;
    let waiters_head = k.offset("percpu_rw_semaphore", "waiters")? + k.offset("wait_queue_head", "head")?;
    let (entry, private) = (k.offset("wait_queue_entry", "entry")?, k.offset("wait_queue_entry", "private")?);
    let supers = super::list_entries(k, head, s_list, MAX_SUPERBLOCKS, "superblock list (super_blocks)").into_items(warnings);
    let mut out = Vec::new();
    for sb in supers {
        let Ok(level) = k.read_member(sb, frozen) else { continue };
        if level == 0 {
            continue;
        }
        let mut waiters = Vec::new();
        let levels = rw_sem.array_len.unwrap_or(SB_FREEZE_LEVELS).min(SB_FREEZE_LEVELS);
        for i in 0..levels {
            let q = sb.wrapping_add(rw_sem.offset).wrapping_add(i * sem_size).wrapping_add(waiters_head);
            for e in list_nodes(k, q, MAX_WAITERS, "sb_writers waitqueue").into_items(warnings) {
                if let Ok(t) = k.read_u64(e.wrapping_sub(entry).wrapping_add(private)) {
                    waiters.push((t, i + 1));
                }
            }
        }
        out.push(FrozenSuper { sb, level, waiters });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::{Fake, KBASE};

    fn layouts(f: &mut Fake) {
        f.member("mutex_waiter", "list", 0, 16, None);
        f.member("mutex_waiter", "task", 16, 8, None);
        f.member("mutex", "owner", 0, 8, None);
        f.member("mutex", "wait_list", 16, 16, None);
        f.member("rwsem_waiter", "list", 0, 16, None);
        f.member("rwsem_waiter", "task", 16, 8, None);
        f.member("rwsem_waiter", "type", 24, 4, None);
        f.member("rw_semaphore", "count", 0, 8, None);
        f.member("rw_semaphore", "owner", 8, 8, None);
        f.member("rw_semaphore", "wait_list", 24, 16, None);
    }

    /// Link `nodes` (addresses of list_heads) into a circular list in this order.
    fn link(f: &mut Fake, nodes: &[u64]) {
        for (i, &n) in nodes.iter().enumerate() {
            f.put_u64(n, nodes[(i + 1) % nodes.len()]);
            f.put_u64(n + 8, nodes[(i + nodes.len() - 1) % nodes.len()]);
        }
    }

    fn stack_from(f: &Fake, lo: u64, len: u64) -> Stack {
        let off = (lo - KBASE) as usize;
        Stack::new("task", lo, f.mem[off..off + len as usize].to_vec())
    }

    #[test]
    fn a_mutex_waiter_on_the_stack_names_the_lock_and_its_owner() {
        let mut f = Fake::new(1 << 16);
        layouts(&mut f);
        let (owner, me, other) = (f.alloc(64), f.alloc(64), f.alloc(64));
        let lock = f.alloc(64);
        let stack = f.alloc(0x1000);
        let other_stack = f.alloc(0x100);
        let (w_me, w_other) = (stack + 0x800, other_stack + 0x40);
        f.put_u64(w_me + 16, me);
        f.put_u64(w_other + 16, other);
        f.put_u64(stack + 0x400, me); // a stray copy of the task pointer that is no waiter
        link(&mut f, &[lock + 16, w_other, w_me]);
        f.put_u64(lock, owner | 0x2); // MUTEX_FLAG_HANDOFF set
        let tasks: HashSet<u64> = [owner, me, other].into();
        let s = stack_from(&f, stack, 0x1000);
        let k = f.kernel();
        let w = lock_waited_on(&k, LockKind::Mutex, me, &s, stack, &tasks).unwrap();
        assert_eq!((w.lock, w.owner, w.queued_behind.clone()), (lock, Some(owner), vec![other]));
        // a list that does not point back at the waiter is not believed
        let mut f = Fake::from_mem(k_mem(&k));
        layouts(&mut f);
        f.put_u64(lock + 16 + 8, 0); // head.prev no longer names our waiter
        let k = f.kernel();
        assert!(lock_waited_on(&k, LockKind::Mutex, me, &s, stack, &tasks).is_none());
    }

    fn k_mem(k: &Kernel) -> Vec<u8> {
        let mut m = vec![0u8; 1 << 16];
        k.phys.read_phys(0, &mut m).unwrap();
        m
    }

    #[test]
    fn an_rwsem_reader_queued_behind_a_writer_while_readers_hold_it() {
        let mut f = Fake::new(1 << 16);
        layouts(&mut f);
        let (reader_holder, writer, me) = (f.alloc(64), f.alloc(64), f.alloc(64));
        let sem = f.alloc(64);
        let (ws, ms) = (f.alloc(0x100), f.alloc(0x1000));
        let (w_writer, w_me) = (ws + 0x10, ms + 0x900);
        f.put_u64(w_writer + 16, writer);
        f.put_u32(w_writer + 24, 0);
        f.put_u64(w_me + 16, me);
        f.put_u32(w_me + 24, 1);
        link(&mut f, &[sem + 24, w_writer, w_me]);
        f.put_u64(sem, (1 << RWSEM_READER_SHIFT) | 0x2); // one reader, waiters
        f.put_u64(sem + 8, reader_holder | RWSEM_READER_OWNED);
        let tasks: HashSet<u64> = [reader_holder, writer, me].into();
        let s = stack_from(&f, ms, 0x1000);
        let s2 = stack_from(&f, ws, 0x100);
        let k = f.kernel();
        let w = lock_waited_on(&k, LockKind::RwSem, me, &s, ms, &tasks).unwrap();
        assert_eq!(w.lock, sem);
        assert!(!w.exclusive && !w.writer_locked);
        assert_eq!((w.readers, w.owner, w.queued_behind.clone()), (1, Some(reader_holder), vec![writer]));
        // the writer's own view: nobody ahead
        let w2 = lock_waited_on(&k, LockKind::RwSem, writer, &s2, ws, &tasks).unwrap();
        assert!(w2.exclusive && w2.queued_behind.is_empty());
    }
}
