//! Every process's open files as /proc/PID/fd and /proc/PID/fdinfo show them (fs/proc/fd.c: readlink's
//! d_path, pos, flags with O_CLOEXEC, mnt_id, ino), with lsof's type and, for sockets, the protocol and the
//! endpoints.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::Kernel;
use crate::objects::fdtable::{open_fds, OpenFd};
use crate::objects::file::{file_type, init_root, read_file, FileLayout, FileView, Root, S_IFBLK, S_IFCHR, S_IFMT, S_IFSOCK};
use crate::records::{Hex, I64};
use crate::walkers::net::{socket_summary, SockLayout, SocketSummary};
use crate::walkers::tasks::{walk_tasks, TaskOptions};
use crate::walkers::Context;
use crate::{Error, Result};

crate::walker! {
    /// Every process's open file descriptors (or one process's, with `pid`): what readlink of /proc/PID/fd/N
    /// gives, fdinfo's pos, flags, mnt_id and inode, lsof's type, and for sockets the protocol and endpoints.
    name: "files",
    options: FilesOptions,
    record: OpenFileList,
    run: walk,
}

/// include/uapi/asm-generic/fcntl.h: O_ACCMODE and O_CLOEXEC (fdinfo adds it for close-on-exec fds).
const O_ACCMODE: u32 = 0o3;
const O_CLOEXEC: u32 = 0o2000000;

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct FilesOptions {
    /// Only this process (by its pid, i.e. thread-group id).
    pub pid: Option<i32>,
}

/// One open file descriptor.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OpenFile {
    pub pid: i32,
    pub comm: String,
    pub fd: u32,
    /// lsof's TYPE: REG, DIR, CHR, BLK, FIFO, SOCK, LINK, or a_inode (eventfd, eventpoll, timerfd …).
    pub file_type: String,
    /// readlink(/proc/PID/fd/N): a path from PID 1's root ("… (deleted)" when unlinked), "socket:[ino]",
    /// "pipe:[ino]", "anon_inode:[eventpoll]" …; None when it could not be read (see error).
    pub target: Option<String>,
    pub deleted: bool,
    /// The inode number (fdinfo's ino).
    pub inode: u64,
    /// The filesystem's device (s_dev) as major:minor in hex, as /proc/PID/maps prints devices.
    pub device: String,
    /// The device a character or block special file stands for (i_rdev), as major:minor.
    pub rdev: Option<String>,
    pub mnt_id: i64,
    /// The file position (fdinfo's pos).
    pub position: I64,
    /// fdinfo's flags: f_flags, plus O_CLOEXEC (0o2000000) when close-on-exec.
    pub flags: u32,
    /// lsof's mode letter from the access mode: r, w or u (read and write).
    pub access: String,
    /// For sockets: family, protocol, state and endpoints.
    pub socket: Option<SocketSummary>,
    /// Kernel address of the struct file.
    pub file: Hex,
    /// Why the descriptor could not be described in full.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct OpenFileList {
    /// By process (in task-list order), then fd.
    pub files: Vec<OpenFile>,
    /// Processes whose fd table was read.
    pub processes: usize,
    pub warnings: Vec<String>,
}

/// One process's descriptors, as `each_process_fds` hands them out.
pub struct FdsOf<'a> {
    pub pid: i32,
    pub comm: &'a str,
    pub task: u64,
    pub fds: &'a [OpenFd],
}

/// Call `f` with the fd table of every process (thread-group leaders; threads share it), or of `pid` only.
/// Returns the warnings of the walk (a damaged table costs that process's rest, not the listing).
pub fn each_process_fds(k: &Kernel, pid: Option<i32>, mut f: impl FnMut(&FdsOf)) -> Result<Vec<String>> {
    let list = walk_tasks(k, &TaskOptions { threads: false, cmdline: false, ..Default::default() })?;
    let mut warnings = list.warnings;
    let files_off = k.offset("task_struct", "files")?;
    let mut found = false;
    for t in list.tasks.iter().filter(|t| pid.is_none_or(|p| p == t.pid)) {
        found = true;
        let files = match k.read_u64(t.address.0.wrapping_add(files_off)) {
            Ok(0) => continue, // exited (a zombie) or a kernel thread without files
            Ok(f) => f,
            Err(e) => {
                warnings.push(format!("pid {}: files_struct unreadable: {e}", t.pid));
                continue;
            }
        };
        let w = open_fds(k, files, &format!("fd table of pid {}", t.pid));
        warnings.extend(w.warning);
        f(&FdsOf { pid: t.pid, comm: &t.comm, task: t.address.0, fds: &w.items });
    }
    if let (Some(p), false) = (pid, found) {
        return Err(Error::NotFound(format!("no process with pid {p}")));
    }
    Ok(warnings)
}

fn walk(cx: &Context, o: &FilesOptions) -> Result<OpenFileList> {
    open_files(cx.kernel, o)
}

pub fn open_files(k: &Kernel, o: &FilesOptions) -> Result<OpenFileList> {
    let l = FileLayout::of(k)?;
    let sl = SockLayout::of(k).ok();
    let root = init_root(k)?;
    let socket_fops = k.symbols.address_of("socket_file_ops");
    let mut out = OpenFileList::default();
    let mut described = Vec::new();
    let warnings = each_process_fds(k, o.pid, |p| {
        out.processes += 1;
        for fd in p.fds {
            let row = describe(k, &l, sl.as_ref(), socket_fops, root, p, fd);
            if let Some(e) = &row.error {
                described.push(format!("pid {} fd {}: {e}", row.pid, row.fd));
            }
            out.files.push(row);
        }
    })?;
    out.warnings = warnings;
    out.warnings.extend(described);
    Ok(out)
}

fn describe(k: &Kernel, l: &FileLayout, sl: Option<&SockLayout>, socket_fops: Option<u64>, root: Root, p: &FdsOf, fd: &OpenFd) -> OpenFile {
    let mut row = OpenFile {
        pid: p.pid,
        comm: p.comm.to_string(),
        fd: fd.fd,
        file_type: "unknown".into(),
        target: None,
        deleted: false,
        inode: 0,
        device: String::new(),
        rdev: None,
        mnt_id: 0,
        position: I64(0),
        flags: 0,
        access: String::new(),
        socket: None,
        file: Hex(fd.file),
        error: None,
    };
    let v: FileView = match read_file(k, l, fd.file, root) {
        Ok(v) => v,
        Err(e) => {
            row.error = Some(e.to_string());
            return row;
        }
    };
    let flags = v.flags | if fd.close_on_exec { O_CLOEXEC } else { 0 };
    row.file_type = file_type(v.mode).into();
    row.target = Some(v.path);
    row.deleted = v.deleted;
    row.inode = v.ino;
    row.device = crate::objects::file::dev_text(v.dev);
    row.rdev = matches!(v.mode & S_IFMT, S_IFCHR | S_IFBLK).then(|| crate::objects::file::dev_text(v.rdev));
    row.mnt_id = v.mnt_id;
    row.position = I64(v.pos);
    row.flags = flags;
    row.access = match flags & O_ACCMODE {
        0 => "r",
        1 => "w",
        _ => "u",
    }
    .into();
    if v.mode & S_IFMT == S_IFSOCK && socket_fops.is_some_and(|f| f == v.f_op) {
        match sl.map(|sl| socket_summary(k, sl, v.private_data)) {
            Some(Ok(s)) => row.socket = Some(s),
            Some(Err(e)) => row.error = Some(format!("socket: {e}")),
            None => row.error = Some("socket: struct sock layout not found".into()),
        }
    }
    row
}
