//! Binding for live VMs: the pid of the process serving a QMP unix socket (SO_PEERCRED, unix(7)), which QMP itself
//! does not tell.

use napi_derive::napi;

use super::to_js;

/// The pid of the process listening on the unix socket at `path` (QEMU, for a QMP socket). The connection is
/// closed at once without a word: QEMU then reads end-of-file and serves its next client.
#[napi]
pub fn unix_socket_peer_pid(path: String) -> napi::Result<i32> {
    use std::os::unix::io::AsRawFd;
    let stream = std::os::unix::net::UnixStream::connect(&path)
        .map_err(|e| to_js(crate::Error::Io(format!("cannot connect to the QMP socket {path}: {e}"))))?;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cred`, a ucred we own, and updates `len`.
    let r = unsafe { libc::getsockopt(stream.as_raw_fd(), libc::SOL_SOCKET, libc::SO_PEERCRED, (&mut cred as *mut libc::ucred).cast(), &mut len) };
    if r != 0 || cred.pid <= 0 {
        return Err(to_js(crate::Error::Io(format!("cannot tell which process serves {path}: {}", std::io::Error::last_os_error()))));
    }
    Ok(cred.pid)
}
