//! What a struct file is and what /proc names it (fs/d_path.c d_path(), fs/proc/fd.c seq_show): the path
//! from the reader's root with " (deleted)" for unlinked dentries, or the pseudo filesystems' own names
//! (d_op->d_dname: sockfs "socket:[ino]", pipefs "pipe:[ino]", anon_inodefs "anon_inode:[eventfd]", pidfs
//! (6.9+), nsfs "net:[ino]", and simple_dname's "/memfd:x (deleted)" for files made by alloc_file_pseudo).

use super::dpath::{d_path, PathLayout, Reach};
use super::pid::find_task_by_pid;
use crate::kernel::{Kernel, Member};
use crate::{Error, Result};

/// include/uapi/linux/stat.h file types (i_mode & S_IFMT).
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
/// dynamic_dname()'s buffer (fs/d_path.c): longer pseudo names are ENAMETOOLONG in the kernel.
const DNAME_MAX: usize = 64;

/// The root paths are read from: the reader's fs->root (a `struct mount *` and a dentry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Root {
    pub mount: u64,
    pub dentry: u64,
}

/// The d_dname implementations nearfield knows, by their kallsyms address.
#[derive(Debug, Clone, Copy, Default)]
struct Dname {
    sockfs: Option<u64>,
    pipefs: Option<u64>,
    anon_inodefs: Option<u64>,
    pidfs: Option<u64>,
    ns: Option<u64>,
    simple: Option<u64>,
}

/// Members read for files, dentries, inodes and superblocks, resolved once.
pub struct FileLayout {
    pub path: PathLayout,
    f_path: u64,
    path_mnt: u64,
    path_dentry: u64,
    f_inode: u64,
    f_pos: Member,
    f_flags: Member,
    f_op: u64,
    private_data: u64,
    d_op: u64,
    d_inode: u64,
    d_parent: u64,
    d_name_len: u64,
    d_name_name: u64,
    d_dname: u64,
    mnt_root: u64,
    mnt_vfs: u64,
    mnt_id: Member,
    i_mode: Member,
    i_ino: Member,
    i_sb: u64,
    i_rdev: Member,
    i_private: u64,
    s_dev: Member,
    ns_ops: u64,
    ns_ops_name: u64,
    dname: Dname,
}

impl FileLayout {
    pub fn of(k: &Kernel) -> Result<FileLayout> {
        let file = k.struct_type("file")?;
        let dentry = k.struct_type("dentry")?;
        let inode = k.struct_type("inode")?;
        let sym = |n: &str| k.symbols.address_of(n);
        Ok(FileLayout {
            path: PathLayout::of(k)?,
            f_path: file.field("f_path")?.offset,
            path_mnt: k.offset("path", "mnt")?,
            path_dentry: k.offset("path", "dentry")?,
            f_inode: file.field("f_inode")?.offset,
            f_pos: file.field("f_pos")?,
            f_flags: file.field("f_flags")?,
            f_op: file.field("f_op")?.offset,
            private_data: file.field("private_data")?.offset,
            d_op: dentry.field("d_op")?.offset,
            d_inode: dentry.field("d_inode")?.offset,
            d_parent: dentry.field("d_parent")?.offset,
            d_name_len: dentry.field("d_name")?.offset + k.offset("qstr", "len")?,
            d_name_name: dentry.field("d_name")?.offset + k.offset("qstr", "name")?,
            d_dname: k.offset("dentry_operations", "d_dname")?,
            mnt_root: k.offset("vfsmount", "mnt_root")?,
            mnt_vfs: k.offset("mount", "mnt")?,
            mnt_id: k.member("mount", "mnt_id")?,
            i_mode: inode.field("i_mode")?,
            i_ino: inode.field("i_ino")?,
            i_sb: inode.field("i_sb")?.offset,
            i_rdev: inode.field("i_rdev")?,
            i_private: inode.field("i_private")?.offset,
            s_dev: k.member("super_block", "s_dev")?,
            ns_ops: k.offset("ns_common", "ops").unwrap_or(8),
            ns_ops_name: k.offset("proc_ns_operations", "name").unwrap_or(0),
            dname: Dname {
                sockfs: sym("sockfs_dname"),
                pipefs: sym("pipefs_dname"),
                anon_inodefs: sym("anon_inodefs_dname"),
                pidfs: sym("pidfs_dname"), // 6.9+
                ns: sym("ns_dname"),
                simple: sym("simple_dname"),
            },
        })
    }

    fn name(&self, k: &Kernel, dentry: u64) -> Result<Vec<u8>> {
        let len = k.read_u32(dentry.wrapping_add(self.d_name_len))? as usize;
        if len > 255 {
            return Err(Error::bad(format!("dentry {dentry:#x} has a {len}-byte name")));
        }
        let mut b = vec![0u8; len];
        k.read(k.read_u64(dentry.wrapping_add(self.d_name_name))?, &mut b)?;
        Ok(b)
    }

    fn ino_of_dentry(&self, k: &Kernel, dentry: u64) -> Result<u64> {
        let inode = k.read_u64(dentry.wrapping_add(self.d_inode))?;
        k.read_member(inode, self.i_ino)
    }
}

/// One struct file, as /proc/PID/fd and fdinfo show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileView {
    /// What readlink(/proc/PID/fd/N) gives (d_path), bytes as Latin-1.
    pub path: String,
    /// The dentry is unlinked: the path ends in " (deleted)".
    pub deleted: bool,
    /// struct inode, its number and mode.
    pub inode: u64,
    pub ino: u64,
    pub mode: u32,
    /// The superblock's device (s_dev) and, for device files, the device itself (i_rdev), as dev_t.
    pub dev: u32,
    pub rdev: u32,
    pub mnt_id: i64,
    pub pos: i64,
    pub flags: u32,
    pub f_op: u64,
    pub private_data: u64,
}

/// PID 1's fs->root: the root every path here is read from (as a reader in the initial namespace sees it).
pub fn init_root(k: &Kernel) -> Result<Root> {
    let task = find_task_by_pid(k, 1).or_else(|_| k.symbol("init_task"))?;
    task_root(k, task)
}

/// A task's fs->root.
pub fn task_root(k: &Kernel, task: u64) -> Result<Root> {
    let fs = k.field(task, "task_struct", "fs")?;
    let root = fs.wrapping_add(k.offset("fs_struct", "root")?);
    let vfsmount = k.field(root, "path", "mnt")?;
    Ok(Root { mount: vfsmount.wrapping_sub(k.offset("mount", "mnt")?), dentry: k.field(root, "path", "dentry")? })
}

/// The struct file at `file`, with its name as seen from `root`.
pub fn read_file(k: &Kernel, l: &FileLayout, file: u64, root: Root) -> Result<FileView> {
    let vfsmount = k.read_u64(file.wrapping_add(l.f_path + l.path_mnt))?;
    let dentry = k.read_u64(file.wrapping_add(l.f_path + l.path_dentry))?;
    let inode = k.read_u64(file.wrapping_add(l.f_inode))?;
    let (path, deleted) = path_name(k, l, vfsmount, dentry, root)?;
    let sb = k.read_u64(inode.wrapping_add(l.i_sb))?;
    Ok(FileView {
        path,
        deleted,
        inode,
        ino: k.read_member(inode, l.i_ino)?,
        mode: k.read_member(inode, l.i_mode)? as u32,
        dev: k.read_member(sb, l.s_dev)? as u32,
        rdev: k.read_member(inode, l.i_rdev)? as u32,
        mnt_id: k.read_member_i64(vfsmount.wrapping_sub(l.mnt_vfs), l.mnt_id)?,
        pos: k.read_member_i64(file, l.f_pos)?,
        flags: k.read_member(file, l.f_flags)? as u32,
        f_op: k.read_u64(file.wrapping_add(l.f_op))?,
        private_data: k.read_u64(file.wrapping_add(l.private_data))?,
    })
}

/// d_path() of (vfsmount, dentry) from `root`, and whether the dentry is unlinked. Pseudo filesystems
/// name their own dentries unless the dentry is the root of a mount of them.
pub fn path_name(k: &Kernel, l: &FileLayout, vfsmount: u64, dentry: u64, root: Root) -> Result<(String, bool)> {
    let d_op = k.read_u64(dentry.wrapping_add(l.d_op))?;
    let d_dname = if d_op == 0 { 0 } else { k.read_u64(d_op.wrapping_add(l.d_dname))? };
    if d_dname != 0 {
        let is_root = k.read_u64(dentry.wrapping_add(l.d_parent))? == dentry;
        let mnt_root = k.read_u64(vfsmount.wrapping_add(l.mnt_root))?;
        if !is_root || dentry != mnt_root {
            return dname(k, l, d_dname, dentry);
        }
    }
    let deleted = l.path.unlinked(k, dentry)?;
    let (mut path, reach) = d_path(k, &l.path, vfsmount.wrapping_sub(l.mnt_vfs), dentry, root.mount, root.dentry)?;
    if reach == Reach::Detached {
        path = "/".into(); // prepend_path(): an escaped dentry prints as the root
    }
    if deleted {
        path.push_str(" (deleted)");
    }
    Ok((path, deleted))
}

fn dname(k: &Kernel, l: &FileLayout, f: u64, dentry: u64) -> Result<(String, bool)> {
    let is = |a: Option<u64>| a == Some(f);
    let d = &l.dname;
    let text = if is(d.sockfs) {
        format!("socket:[{}]", l.ino_of_dentry(k, dentry)?)
    } else if is(d.pipefs) {
        format!("pipe:[{}]", l.ino_of_dentry(k, dentry)?)
    } else if is(d.anon_inodefs) {
        format!("anon_inode:{}", super::latin1(&l.name(k, dentry)?))
    } else if is(d.pidfs) {
        "anon_inode:[pidfd]".to_string()
    } else if is(d.ns) {
        let inode = k.read_u64(dentry.wrapping_add(l.d_inode))?;
        let ns = k.read_u64(inode.wrapping_add(l.i_private))?;
        let ops = k.read_u64(ns.wrapping_add(l.ns_ops))?;
        let name = k.read_cstr(k.read_u64(ops.wrapping_add(l.ns_ops_name))?, 32)?;
        format!("{name}:[{}]", k.read_member(inode, l.i_ino)?)
    } else if is(d.simple) {
        // alloc_file_pseudo()'s dentries (memfd, shmem files of kernel users): never hashed, always "deleted"
        return Ok((format!("/{} (deleted)", super::latin1(&l.name(k, dentry)?)), true));
    } else {
        let f = super::symbolize(k, f).map_or_else(|| format!("{f:#x}"), |s| s.name);
        return Err(Error::Unsupported(format!("dentry {dentry:#x} is named by {f}(), which nearfield does not know")));
    };
    if text.len() >= DNAME_MAX {
        return Err(Error::bad(format!("pseudo name of dentry {dentry:#x} is longer than the kernel's {DNAME_MAX}-byte buffer")));
    }
    Ok((text, false))
}

/// lsof's TYPE for an inode mode (a_inode: the anonymous inode of eventfd, epoll, timerfd … has no type bits).
pub fn file_type(mode: u32) -> &'static str {
    match mode & S_IFMT {
        S_IFREG => "REG",
        S_IFDIR => "DIR",
        S_IFCHR => "CHR",
        S_IFBLK => "BLK",
        S_IFIFO => "FIFO",
        S_IFSOCK => "SOCK",
        S_IFLNK => "LINK",
        0 => "a_inode",
        _ => "unknown",
    }
}

/// include/linux/kdev_t.h: a dev_t as "major:minor" the way /proc/PID/maps prints it (%02x:%02x).
pub fn dev_text(dev: u32) -> String {
    format!("{:02x}:{:02x}", dev >> 20, dev & 0xfffff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    // file: f_path@0 (path: mnt@0, dentry@8), f_inode@16, f_op@24, private_data@32, f_flags@40, f_pos@48;
    // dentry: d_parent@0, d_name@8 (qstr len@4 name@8), d_hash@24 (pprev@8), d_inode@48, d_op@56;
    // inode: i_mode@0, i_sb@8, i_ino@16, i_rdev@24, i_private@32; mount: parent@0, mountpoint@8, mnt@16 (mnt_root@0), mnt_id@40.
    fn layout(f: &mut Fake) {
        f.size("file", 64);
        for (p, o, s) in [("f_path", 0, 16), ("f_inode", 16, 8), ("f_op", 24, 8), ("private_data", 32, 8), ("f_flags", 40, 4), ("f_pos", 48, 8)] {
            f.member("file", p, o, s, None);
        }
        f.member("path", "mnt", 0, 8, None);
        f.member("path", "dentry", 8, 8, None);
        f.size("dentry", 64);
        for (p, o, s) in [("d_parent", 0, 8), ("d_name", 8, 16), ("d_hash", 24, 16), ("d_inode", 48, 8), ("d_op", 56, 8)] {
            f.member("dentry", p, o, s, None);
        }
        f.size("qstr", 16);
        f.member("qstr", "len", 4, 4, None);
        f.member("qstr", "name", 8, 8, None);
        f.member("hlist_bl_node", "pprev", 8, 8, None);
        f.member("dentry_operations", "d_dname", 8, 8, None);
        f.size("inode", 64);
        for (p, o, s) in [("i_mode", 0, 2), ("i_sb", 8, 8), ("i_ino", 16, 8), ("i_rdev", 24, 4), ("i_private", 32, 8)] {
            f.member("inode", p, o, s, None);
        }
        f.member("super_block", "s_dev", 0, 4, None);
        f.size("mount", 64);
        f.member("mount", "mnt_parent", 0, 8, None);
        f.member("mount", "mnt_mountpoint", 8, 8, None);
        f.member("mount", "mnt", 16, 16, None);
        f.member("mount", "mnt_id", 40, 4, None);
        f.member("vfsmount", "mnt_root", 0, 8, None);
    }

    fn dentry(f: &mut Fake, parent: Option<u64>, name: &[u8], inode: u64, hashed: bool) -> u64 {
        let d = f.alloc(64);
        let n = f.alloc(name.len() as u64 + 1);
        f.put(n, name);
        f.put_u64(d, parent.unwrap_or(d));
        f.put_u32(d + 12, name.len() as u32);
        f.put_u64(d + 16, n);
        f.put_u64(d + 32, hashed as u64);
        f.put_u64(d + 48, inode);
        d
    }

    fn inode(f: &mut Fake, mode: u32, ino: u64, sb: u64) -> u64 {
        let i = f.alloc(64);
        f.put(i, &(mode as u16).to_le_bytes());
        f.put_u64(i + 8, sb);
        f.put_u64(i + 16, ino);
        i
    }

    fn file(f: &mut Fake, mount: u64, dentry: u64, inode: u64) -> u64 {
        let file = f.alloc(64);
        f.put_u64(file, mount + 16);
        f.put_u64(file + 8, dentry);
        f.put_u64(file + 16, inode);
        f.put_u32(file + 40, 0o100002);
        f.put_u64(file + 48, 12345);
        file
    }

    #[test]
    fn paths_deleted_files_and_pseudo_names() {
        let mut f = Fake::new(1 << 20);
        layout(&mut f);
        let sb = f.alloc(8);
        f.put_u32(sb, (8 << 20) | 1);
        let dir_inode = inode(&mut f, S_IFDIR | 0o755, 2, sb);
        let root = dentry(&mut f, None, b"/", dir_inode, true);
        let mount = f.alloc(64);
        f.put_u64(mount, mount);
        f.put_u64(mount + 16, root);
        f.put_u32(mount + 40, 29);
        let reg = inode(&mut f, S_IFREG | 0o644, 2026, sb);
        let gone = dentry(&mut f, Some(root), b"x.bin", reg, false);
        let deleted = file(&mut f, mount, gone, reg);
        // sockfs: the dentry names itself through d_op->d_dname
        let sock_fn = f.alloc(16);
        f.sym("sockfs_dname", sock_fn);
        f.sym("simple_dname", sock_fn + 8);
        let ops = f.alloc(16);
        f.put_u64(ops + 8, sock_fn);
        let sock_inode = inode(&mut f, S_IFSOCK | 0o777, 1294, sb);
        let sock_root = dentry(&mut f, None, b"socket:", sock_inode, true);
        let sd = dentry(&mut f, Some(sock_root), b"", sock_inode, false);
        f.put_u64(sd + 56, ops);
        let sock = file(&mut f, mount, sd, sock_inode);
        let simple_ops = f.alloc(16);
        f.put_u64(simple_ops + 8, sock_fn + 8);
        let memfd = dentry(&mut f, Some(sock_root), b"memfd:nf", reg, false);
        f.put_u64(memfd + 56, simple_ops);
        let memfd_file = file(&mut f, mount, memfd, reg);
        let k = f.kernel();
        let l = FileLayout::of(&k).unwrap();
        let r = Root { mount, dentry: root };
        let v = read_file(&k, &l, deleted, r).unwrap();
        assert_eq!((v.path.as_str(), v.deleted, v.ino, v.mnt_id, v.pos, v.flags), ("/x.bin (deleted)", true, 2026, 29, 12345, 0o100002));
        assert_eq!((file_type(v.mode), dev_text(v.dev)), ("REG", "08:01".to_string()));
        let s = read_file(&k, &l, sock, r).unwrap();
        assert_eq!((s.path.as_str(), s.deleted, file_type(s.mode)), ("socket:[1294]", false, "SOCK"));
        assert_eq!(read_file(&k, &l, memfd_file, r).unwrap().path, "/memfd:nf (deleted)");
    }

    #[test]
    fn an_unknown_d_dname_and_a_dentry_loop_are_errors_not_hangs() {
        let mut f = Fake::new(1 << 20);
        layout(&mut f);
        let sb = f.alloc(8);
        let ino = inode(&mut f, S_IFREG, 7, sb);
        let root = dentry(&mut f, None, b"/", ino, true);
        let mount = f.alloc(64);
        f.put_u64(mount, mount);
        f.put_u64(mount + 16, root);
        let a = dentry(&mut f, Some(root), b"a", ino, true);
        let b = dentry(&mut f, Some(a), b"b", ino, true);
        f.put_u64(a, b); // a's parent is b: the chain never reaches the root
        let looping = file(&mut f, mount, b, ino);
        let ops = f.alloc(16);
        f.put_u64(ops + 8, 0xffff_ffff_8100_1234);
        let odd = dentry(&mut f, Some(root), b"odd", ino, true);
        f.put_u64(odd + 56, ops);
        let odd_file = file(&mut f, mount, odd, ino);
        let k = f.kernel();
        let l = FileLayout::of(&k).unwrap();
        let r = Root { mount, dentry: root };
        // the loop ends at PATH_MAX (or the step bound) as the kernel's ENAMETOOLONG would
        let e = read_file(&k, &l, looping, r).unwrap_err().to_string();
        assert!(e.contains("PATH_MAX") || e.contains("a loop"), "{e}");
        assert!(read_file(&k, &l, odd_file, r).unwrap_err().to_string().contains("does not know"));
    }
}
