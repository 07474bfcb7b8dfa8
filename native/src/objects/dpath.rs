//! Paths of (mount, dentry) pairs as fs/d_path.c prepend_path()/__d_path() build them: up the dentry
//! chain to the mount's root, across to the mount point in the parent mount, until the reader's root.

use crate::kernel::{Kernel, Member};
use crate::{Error, Result};

/// PATH_MAX (include/uapi/linux/limits.h): the kernel gives up with ENAMETOOLONG beyond it.
const PATH_MAX: usize = 4096;
/// NAME_MAX: the longest name one dentry may carry.
const NAME_MAX: u64 = 255;
/// A path of PATH_MAX bytes has at most this many components ("/a" each).
const MAX_STEPS: usize = PATH_MAX / 2 + 64;

/// Member offsets d_path needs, resolved once.
pub struct PathLayout {
    d_parent: u64,
    d_name_len: Member,
    d_name_name: u64,
    d_hash_pprev: u64,
    mnt_parent: u64,
    mnt_mountpoint: u64,
    /// Offset of `struct vfsmount mnt` inside `struct mount`, and mnt_root inside it.
    mnt_vfs: u64,
    mnt_root: u64,
}

impl PathLayout {
    pub fn of(k: &Kernel) -> Result<PathLayout> {
        let d = k.struct_type("dentry")?;
        let m = k.struct_type("mount")?;
        Ok(PathLayout {
            d_parent: d.field("d_parent")?.offset,
            d_name_len: k.member("qstr", "len")?,
            d_name_name: d.field("d_name")?.offset + k.offset("qstr", "name")?,
            d_hash_pprev: d.field("d_hash")?.offset + k.offset("hlist_bl_node", "pprev").unwrap_or(8),
            mnt_parent: m.field("mnt_parent")?.offset,
            mnt_mountpoint: m.field("mnt_mountpoint")?.offset,
            mnt_vfs: m.field("mnt")?.offset,
            mnt_root: k.offset("vfsmount", "mnt_root")?,
        })
    }

    fn d_name(&self, k: &Kernel, dentry: u64) -> Result<Vec<u8>> {
        let qstr = dentry.wrapping_add(self.d_name_name).wrapping_sub(k.offset("qstr", "name").unwrap_or(8));
        let len = k.read_member(qstr, self.d_name_len)?;
        if len > NAME_MAX {
            return Err(Error::bad(format!("dentry {dentry:#x} has a {len}-byte name")));
        }
        let name = k.read_u64(dentry.wrapping_add(self.d_name_name))?;
        let mut b = vec![0u8; len as usize];
        k.read(name, &mut b)?;
        Ok(b)
    }

    /// The `struct mount` that embeds a `struct vfsmount *` (real_mount()).
    pub fn real_mount(&self, vfsmount: u64) -> u64 {
        vfsmount.wrapping_sub(self.mnt_vfs)
    }

    /// d_unlinked(): unhashed and not a root: d_path marks it " (deleted)".
    pub fn unlinked(&self, k: &Kernel, dentry: u64) -> Result<bool> {
        let pprev = k.read_u64(dentry.wrapping_add(self.d_hash_pprev))?;
        let parent = k.read_u64(dentry.wrapping_add(self.d_parent))?;
        Ok(pprev == 0 && parent != dentry)
    }
}

/// Where a path ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Under the reader's root: the path is what /proc shows.
    UnderRoot,
    /// The walk reached the namespace's top without meeting the reader's root (/proc/mounts skips it).
    OutsideRoot,
    /// A dentry is its own parent below the mount root ("escaped"), or a detached mount.
    Detached,
}

/// The path of `dentry` in `mount` (a `struct mount *`) relative to the reader's root (`root_mount`,
/// `root_dentry`), bounded by PATH_MAX; bytes as Latin-1.
pub fn d_path(k: &Kernel, l: &PathLayout, mut mount: u64, mut dentry: u64, root_mount: u64, root_dentry: u64) -> Result<(String, Reach)> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut len = 0usize;
    let mut reach = Reach::UnderRoot;
    for _ in 0..MAX_STEPS {
        if dentry == root_dentry && mount == root_mount {
            return Ok((join(&parts), reach));
        }
        let parent = k.read_u64(dentry.wrapping_add(l.d_parent))?;
        let mnt_root = k.read_u64(mount.wrapping_add(l.mnt_vfs + l.mnt_root))?;
        if dentry == mnt_root {
            let up = k.read_u64(mount.wrapping_add(l.mnt_parent))?;
            if up != mount {
                dentry = k.read_u64(mount.wrapping_add(l.mnt_mountpoint))?;
                mount = up;
                continue;
            }
            reach = Reach::OutsideRoot;
            return Ok((join(&parts), reach));
        }
        if dentry == parent {
            reach = Reach::Detached;
            return Ok((join(&parts), reach));
        }
        let name = l.d_name(k, dentry)?;
        len = len.saturating_add(name.len() + 1);
        if len > PATH_MAX {
            return Err(Error::bad(format!("path of dentry {dentry:#x} is longer than PATH_MAX")));
        }
        parts.push(name);
        dentry = parent;
    }
    Err(Error::bad(format!("dentry chain from {dentry:#x} does not end within {MAX_STEPS} steps (a loop?)")))
}

fn join(parts: &[Vec<u8>]) -> String {
    if parts.is_empty() {
        return "/".into();
    }
    let mut s = String::new();
    for p in parts.iter().rev() {
        s.push('/');
        s.push_str(&super::latin1(p));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    // dentry: d_parent@0, d_name (qstr: len@4, name@8)@8, d_hash (pprev@8)@24; mount: mnt_parent@0,
    // mnt_mountpoint@8, mnt (vfsmount: mnt_root@0)@16.
    fn layout(f: &mut Fake) {
        f.size("dentry", 64);
        f.member("dentry", "d_parent", 0, 8, None);
        f.member("dentry", "d_name", 8, 16, None);
        f.member("dentry", "d_hash", 24, 16, None);
        f.size("qstr", 16);
        f.member("qstr", "len", 4, 4, None);
        f.member("qstr", "name", 8, 8, None);
        f.member("hlist_bl_node", "pprev", 8, 8, None);
        f.size("mount", 64);
        f.member("mount", "mnt_parent", 0, 8, None);
        f.member("mount", "mnt_mountpoint", 8, 8, None);
        f.member("mount", "mnt", 16, 16, None);
        f.member("vfsmount", "mnt_root", 0, 8, None);
    }

    fn dentry(f: &mut Fake, parent: Option<u64>, name: &[u8]) -> u64 {
        let d = f.alloc(64);
        let n = f.alloc(name.len() as u64 + 1);
        f.put(n, name);
        f.put_u64(d, parent.unwrap_or(d));
        f.put_u32(d + 8 + 4, name.len() as u32);
        f.put_u64(d + 16, n);
        f.put_u64(d + 32, 1); // hashed
        d
    }

    fn mount(f: &mut Fake, parent: Option<u64>, mountpoint: u64, root: u64) -> u64 {
        let m = f.alloc(64);
        f.put_u64(m, parent.unwrap_or(m));
        f.put_u64(m + 8, mountpoint);
        f.put_u64(m + 16, root);
        m
    }

    #[test]
    fn crosses_mount_points_up_to_the_root() {
        let mut f = Fake::new(1 << 16);
        layout(&mut f);
        let root = dentry(&mut f, None, b"/");
        let mnt_dir = dentry(&mut f, Some(root), b"mnt");
        let data = dentry(&mut f, Some(mnt_dir), b"root");
        let top = mount(&mut f, None, root, root);
        let fsroot = dentry(&mut f, None, b"/");
        let file = dentry(&mut f, Some(fsroot), b"x y");
        let sub = mount(&mut f, Some(top), data, fsroot);
        let k = f.kernel();
        let l = PathLayout::of(&k).unwrap();
        assert_eq!(d_path(&k, &l, sub, fsroot, top, root).unwrap(), ("/mnt/root".into(), Reach::UnderRoot));
        assert_eq!(d_path(&k, &l, sub, file, top, root).unwrap(), ("/mnt/root/x y".into(), Reach::UnderRoot));
        assert_eq!(d_path(&k, &l, top, root, top, root).unwrap(), ("/".into(), Reach::UnderRoot));
        // a reader whose root is the sub mount's root sees the top mount as outside it
        assert_eq!(d_path(&k, &l, top, mnt_dir, sub, fsroot).unwrap().1, Reach::OutsideRoot);
        assert!(!l.unlinked(&k, file).unwrap());
    }

    #[test]
    fn a_dentry_loop_and_an_overlong_name_are_errors() {
        let mut f = Fake::new(1 << 16);
        layout(&mut f);
        let root = dentry(&mut f, None, b"/");
        let a = dentry(&mut f, Some(root), b"a");
        let b = dentry(&mut f, Some(a), b"b");
        f.put_u64(a, b); // a's parent is b: a loop that never reaches the root
        let long = dentry(&mut f, Some(root), b"n");
        f.put_u32(long + 12, 4000);
        let top = mount(&mut f, None, root, root);
        let k = f.kernel();
        let l = PathLayout::of(&k).unwrap();
        assert!(d_path(&k, &l, top, b, top, root).is_err());
        assert!(d_path(&k, &l, top, long, top, root).unwrap_err().to_string().contains("4000-byte name"));
    }
}
