//! The mount table as PID 1 reads /proc/mounts (fs/proc_namespace.c show_vfsmnt): its mount namespace's
//! mounts (mnt_namespace.list until 6.7, the .mounts rbtree since 6.8), paths from its root (fs/d_path.c),
//! generic options (show_sb_opts, show_mnt_opts) and the filesystem's own where we know its show_options.

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::{Kernel, Member};
use crate::objects::dpath::{d_path, PathLayout, Reach};
use crate::objects::pid::find_task_by_pid;
use crate::objects::{list_entries, rbtree_entries, Object};
use crate::records::Hex;
use crate::walkers::{Context, NoOptions};
use crate::{Error, Result};

crate::walker! {
    /// The mount table of PID 1's mount namespace, as /proc/mounts prints it, with each superblock's UUID.
    name: "mounts",
    options: NoOptions,
    record: MountTable,
    run: walk,
}

/// Mounts a namespace may hold (the kernel's default sysctl fs.mount-max is 100 000).
const MAX_MOUNTS: usize = 100_000;
/// include/linux/mount.h MNT_* flags (unchanged since 2.6) and the /proc/mounts words for them, in
/// show_mnt_opts()'s order.
const MNT_READONLY: u64 = 0x40;
const MNT_OPTS: [(u64, &str); 7] = [(0x01, "nosuid"), (0x02, "nodev"), (0x04, "noexec"), (0x08, "noatime"), (0x10, "nodiratime"), (0x20, "relatime"), (0x80, "nosymfollow")];
/// include/linux/fs.h SB_* flags and show_sb_opts()'s words.
const SB_RDONLY: u64 = 1;
const SB_OPTS: [(u64, &str); 4] = [(16, "sync"), (128, "dirsync"), (64, "mand"), (1 << 25, "lazytime")];

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    /// What was mounted (mnt_devname; "none" when unset), as /proc/mounts prints it.
    pub device: String,
    /// Where, relative to PID 1's root; special characters escaped as /proc does (\040 for a space).
    pub mountpoint: String,
    /// The filesystem type ("fuse.sshfs" when it has a subtype).
    pub fstype: String,
    /// rw or ro, then the generic options, then the filesystem's own.
    pub options: Vec<String>,
    /// The filesystem's own options are complete (false: nearfield does not know its show_options, so only
    /// the generic ones are listed).
    pub fs_options_complete: bool,
    pub mount_id: i64,
    pub parent_id: i64,
    /// The superblock's UUID (s_uuid), when the filesystem sets one: how a disk image is matched to its mount.
    pub uuid: Option<String>,
    /// The superblock's s_id (the block device name, or the fs type for virtual ones).
    pub sb_id: String,
    pub superblock: Hex,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct MountTable {
    /// In the namespace's order, as /proc/mounts lists them.
    pub mounts: Vec<Mount>,
    pub warnings: Vec<String>,
}

/// /proc's mangle(): seq_escape() with " \t\n\\" as octal.
fn mangle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn walk(cx: &Context, _: &NoOptions) -> Result<MountTable> {
    let k = cx.kernel;
    let task = find_task_by_pid(k, 1).or_else(|_| k.symbol("init_task"))?;
    let nsproxy = k.field(task, "task_struct", "nsproxy")?;
    let ns = k.field(nsproxy, "nsproxy", "mnt_ns")?;
    let fs = k.field(task, "task_struct", "fs")?;
    let root = fs.wrapping_add(k.offset("fs_struct", "root")?);
    let pl = PathLayout::of(k)?;
    let root_mount = pl.real_mount(k.field(root, "path", "mnt")?);
    let root_dentry = k.field(root, "path", "dentry")?;

    let mount = k.struct_type("mount")?;
    let nst = k.struct_type("mnt_namespace")?;
    let mut out = MountTable::default();
    let mounts = if let Some(list) = nst.opt_field("list") {
        list_entries(k, ns.wrapping_add(list.offset), mount.field("mnt_list")?.offset, MAX_MOUNTS, "mount list (mnt_namespace.list)")
    } else {
        // 6.8+: an rbtree ordered by mount id
        rbtree_entries(k, ns.wrapping_add(nst.field("mounts")?.offset), mount.field("mnt_node")?.offset, MAX_MOUNTS, "mount tree (mnt_namespace.mounts)")
    }
    .into_items(&mut out.warnings);

    let l = Layout::of(k)?;
    for m in mounts {
        match one(k, &l, &pl, m, root_mount, root_dentry) {
            Ok(Some(row)) => out.mounts.push(row),
            Ok(None) => {} // outside PID 1's root: /proc/mounts skips it too
            Err(e) => out.warnings.push(format!("mount at {m:#x} skipped: {e}")),
        }
    }
    Ok(out)
}

struct Layout {
    mount_size: u64,
    devname: u64,
    vfs: u64,
    mnt_root: u64,
    mnt_sb: u64,
    mnt_flags: Member,
    mnt_id: Member,
    parent: u64,
    /// 6.1 mnt_userns / 6.3+ mnt_idmap, and what a plain mount points to.
    idmap: Option<(u64, u64)>,
    sb_size: u64,
    s_type: u64,
    s_flags: Member,
    s_op: u64,
    s_fs_info: u64,
    s_subtype: u64,
    s_uuid: Option<Member>,
    s_id: Member,
    fs_name: u64,
}

impl Layout {
    fn of(k: &Kernel) -> Result<Layout> {
        let m = k.struct_type("mount")?;
        let sb = k.struct_type("super_block")?;
        let vfs = m.field("mnt")?.offset;
        let idmap = k
            .types
            .member("vfsmount", "mnt_idmap")
            .zip(k.symbol("nop_mnt_idmap").ok())
            .or_else(|| k.types.member("vfsmount", "mnt_userns").zip(k.symbol("init_user_ns").ok()))
            .map(|(f, plain)| (vfs + f.offset, plain));
        Ok(Layout {
            mount_size: m.size,
            devname: m.field("mnt_devname")?.offset,
            vfs,
            mnt_root: vfs + k.offset("vfsmount", "mnt_root")?,
            mnt_sb: vfs + k.offset("vfsmount", "mnt_sb")?,
            mnt_flags: k.member("vfsmount", "mnt_flags")?,
            mnt_id: m.field("mnt_id")?,
            parent: m.field("mnt_parent")?.offset,
            idmap,
            sb_size: sb.size,
            s_type: sb.field("s_type")?.offset,
            s_flags: sb.field("s_flags")?,
            s_op: sb.field("s_op")?.offset,
            s_fs_info: sb.field("s_fs_info")?.offset,
            s_subtype: sb.field("s_subtype")?.offset,
            s_uuid: sb.opt_field("s_uuid"),
            s_id: sb.field("s_id")?,
            fs_name: k.offset("file_system_type", "name")?,
        })
    }
}

fn one(k: &Kernel, l: &Layout, pl: &PathLayout, m: u64, root_mount: u64, root_dentry: u64) -> Result<Option<Mount>> {
    let o = Object::read(k, m, l.mount_size)?;
    let mnt_root = o.ptr_at(l.mnt_root)?;
    let (path, reach) = d_path(k, pl, m, mnt_root, root_mount, root_dentry)?;
    if reach != Reach::UnderRoot {
        return Ok(None);
    }
    let devname = o.ptr_at(l.devname)?;
    let device = if devname == 0 { "none".to_string() } else { k.read_cstr(devname, 4096)? };
    let sb_addr = o.ptr_at(l.mnt_sb)?;
    let sb = Object::read(k, sb_addr, l.sb_size)?;
    let s_type = sb.ptr_at(l.s_type)?;
    let mut fstype = k.read_cstr(k.read_u64(s_type.wrapping_add(l.fs_name))?, 64)?;
    let subtype = sb.ptr_at(l.s_subtype)?;
    if subtype != 0 {
        fstype = format!("{fstype}.{}", k.read_cstr(subtype, 64)?);
    }
    let mnt_flags = o.uint_at(l.vfs + l.mnt_flags.offset, l.mnt_flags.size)?;
    let s_flags = sb.get(l.s_flags)?;
    let mut options = vec![if mnt_flags & MNT_READONLY != 0 || s_flags & SB_RDONLY != 0 { "ro" } else { "rw" }.to_string()];
    options.extend(SB_OPTS.iter().filter(|(f, _)| s_flags & f != 0).map(|(_, w)| w.to_string()));
    options.extend(MNT_OPTS.iter().filter(|(f, _)| mnt_flags & f != 0).map(|(_, w)| w.to_string()));
    if let Some((at, plain)) = l.idmap {
        if o.ptr_at(at)? != plain {
            options.push("idmapped".into());
        }
    }
    let fs_options = fs_show_options(k, sb.ptr_at(l.s_op)?, sb.ptr_at(l.s_fs_info)?);
    let fs_options_complete = fs_options.is_some();
    options.extend(fs_options.unwrap_or_default());
    let parent = o.ptr_at(l.parent)?;
    let uuid = match l.s_uuid {
        Some(u) if u.size == 16 => Some(sb.bytes(u)?).filter(|b| b.iter().any(|&x| x != 0)).map(uuid_text),
        _ => None,
    };
    Ok(Some(Mount {
        device: mangle(&device),
        mountpoint: mangle(&path),
        fstype: mangle(&fstype),
        options,
        fs_options_complete,
        mount_id: o.int(l.mnt_id)?,
        parent_id: Object::read(k, parent, l.mount_size).and_then(|p| p.int(l.mnt_id))?,
        uuid,
        sb_id: sb.cstr(l.s_id)?,
        superblock: Hex(sb_addr),
    }))
}

fn uuid_text(b: &[u8]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// The filesystem's own show_options() words, for the superblock operations we know by their kallsyms name;
/// None for the others (then only the generic options are listed).
fn fs_show_options(k: &Kernel, s_op: u64, fs_info: u64) -> Option<Vec<String>> {
    let is = |name: &str| k.symbols.address_of(name) == Some(s_op);
    if is("shmem_ops") {
        return shmem_show_options(k, fs_info).ok();
    }
    if is("proc_sops") {
        return proc_show_options(k, fs_info).ok();
    }
    if is("ramfs_ops") {
        // fs/ramfs/inode.c ramfs_show_options(): the mode, when not RAMFS_DEFAULT_MODE (0755)
        let mode = k.field(fs_info, "ramfs_fs_info", "mount_opts.mode").ok()?;
        return Some(if mode == 0o755 { Vec::new() } else { vec![format!("mode={mode:o}")] });
    }
    if is("kernfs_sops") {
        return kernfs_show_options(k, fs_info).ok();
    }
    None
}

/// mm/shmem.c shmem_show_options() (6.1; noswap 6.4+).
fn shmem_show_options(k: &Kernel, sbinfo: u64) -> Result<Vec<String>> {
    let t = k.struct_type("shmem_sb_info")?;
    let o = k.object(sbinfo, &t)?;
    let totalram = k.read_u64(k.symbol("_totalram_pages")?)?;
    let page_kb = k.facts.page_size.max(4096) / 1024;
    let mut v = Vec::new();
    let max_blocks = o.get(t.field("max_blocks")?)?;
    // shmem_default_max_blocks(), shmem_default_max_inodes() (no highmem on x86-64)
    if max_blocks != totalram / 2 {
        v.push(format!("size={}k", max_blocks.saturating_mul(page_kb)));
    }
    let max_inodes = o.get(t.field("max_inodes")?)?;
    if max_inodes != totalram / 2 {
        v.push(format!("nr_inodes={max_inodes}"));
    }
    let mode = o.get(t.field("mode")?)?;
    if mode != 0o1777 {
        v.push(format!("mode={mode:03o}"));
    }
    let (uid, gid) = (o.get(t.field_any(&["uid.val", "uid"])?)?, o.get(t.field_any(&["gid.val", "gid"])?)?);
    if uid != 0 {
        v.push(format!("uid={uid}"));
    }
    if gid != 0 {
        v.push(format!("gid={gid}"));
    }
    // Debian builds with CONFIG_TMPFS_INODE64=y: inode64 or inode32 is always shown then
    v.push(if o.get(t.field("full_inums")?)? != 0 { "inode64" } else { "inode32" }.into());
    if let Some(h) = t.opt_field("huge") {
        match o.get(h)? {
            0 => {}
            1 => v.push("huge=always".into()),
            2 => v.push("huge=within_size".into()),
            3 => v.push("huge=advise".into()),
            n => return Err(Error::Unsupported(format!("shmem huge={n}"))),
        }
    }
    if o.get(t.field("mpol")?)? != 0 {
        return Err(Error::Unsupported("tmpfs mpol= is not decoded".into()));
    }
    if let Some(n) = t.opt_field("noswap") {
        if o.get(n)? != 0 {
            v.push("noswap".into());
        }
    }
    Ok(v)
}

/// fs/proc/root.c proc_show_options().
fn proc_show_options(k: &Kernel, info: u64) -> Result<Vec<String>> {
    let t = k.struct_type("proc_fs_info")?;
    let o = k.object(info, &t)?;
    let mut v = Vec::new();
    let gid = o.get(t.field_any(&["pid_gid.val", "pid_gid"])?)?;
    if gid != 0 {
        v.push(format!("gid={gid}"));
    }
    match o.get(t.field("hide_pid")?)? {
        0 => {}
        1 => v.push("hidepid=noaccess".into()),
        2 => v.push("hidepid=invisible".into()),
        4 => v.push("hidepid=ptraceable".into()),
        n => return Err(Error::Unsupported(format!("proc hidepid={n}"))),
    }
    if o.get(t.field("pidonly")?)? != 0 {
        v.push("subset=pid".into());
    }
    Ok(v)
}

/// kernfs filesystems: sysfs shows nothing; cgroup2 shows cgroup_show_options() from cgrp_dfl_root.flags
/// (kernel/cgroup/cgroup.c), whose bits are enum cgroup_root_flag in the kernel's types.
fn kernfs_show_options(k: &Kernel, info: u64) -> Result<Vec<String>> {
    let root = k.field(info, "kernfs_super_info", "root")?;
    if Some(root) == k.symbol("sysfs_root").and_then(|s| k.read_u64(s)).ok() {
        return Ok(Vec::new());
    }
    let dfl = k.symbol("cgrp_dfl_root")?;
    if root != k.field(dfl, "cgroup_root", "kf_root")? {
        return Err(Error::Unsupported("a kernfs filesystem other than sysfs and cgroup2 (cgroup v1, resctrl …)".into()));
    }
    let flags = k.field(dfl, "cgroup_root", "flags")?;
    let mut v = Vec::new();
    for (e, word) in [
        ("CGRP_ROOT_NS_DELEGATE", "nsdelegate"),
        ("CGRP_ROOT_FAVOR_DYNMODS", "favordynmods"),
        ("CGRP_ROOT_MEMORY_LOCAL_EVENTS", "memory_localevents"),
        ("CGRP_ROOT_MEMORY_RECURSIVE_PROT", "memory_recursiveprot"),
        ("CGRP_ROOT_MEMORY_HUGETLB_ACCOUNTING", "memory_hugetlb_accounting"),
        ("CGRP_ROOT_PIDS_LOCAL_EVENTS", "pids_localevents"),
    ] {
        if let Ok(bit) = k.enumerator(e) {
            if bit > 0 && flags & bit as u64 != 0 {
                v.push(word.into());
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mangling_and_uuids_as_proc_prints_them() {
        assert_eq!(mangle("/mnt/a b\\c\td"), "/mnt/a\\040b\\134c\\011d");
        assert_eq!(uuid_text(&[0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8]), "12345678-9abc-def0-0102-030405060708");
    }
}
