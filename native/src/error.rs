//! The closed set of errors nearfield reports (ARCHITECTURE.md "The native boundary" §6).

use std::fmt;

/// Every failure the core can report. The binding maps `code()` to the JS `NearfieldError.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A read at a guest address that is not backed (outside RAM, in a hole, past a truncated file).
    Fault { addr: u64, what: String },
    /// The bytes are there but make no sense (bad magic, cycle, absurd length, corrupt structure).
    BadData(String),
    /// A real format or feature we deliberately do not handle (yet).
    Unsupported(String),
    /// Something we looked for is absent (a symbol, a type, VMCOREINFO, a partition).
    NotFound(String),
    /// The host file system failed us (open, mmap, read).
    Io(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The words every "page left out of the dump" fault carries.
pub const EXCLUDED_BY_DUMP: &str = "page excluded by the dump";

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Fault { .. } => "FAULT",
            Error::BadData(_) => "BAD_DATA",
            Error::Unsupported(_) => "UNSUPPORTED",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Io(_) => "IO",
        }
    }

    pub fn fault(addr: u64, what: impl Into<String>) -> Self {
        Error::Fault { addr, what: what.into() }
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        Error::BadData(msg.into())
    }

    /// A page the RAM source deliberately left out (a filtered kdump, `makedumpfile -d`): a FAULT whose text
    /// says so, so walkers' warnings and `ps`'s cmdline errors carry the reason instead of "not backed".
    pub fn excluded(addr: u64, why: impl fmt::Display) -> Self {
        Error::Fault { addr, what: format!("{EXCLUDED_BY_DUMP} ({why})") }
    }

    /// True for a FAULT made by `excluded` (also after `context` or a virtual-address rewrite kept its text).
    pub fn is_excluded(&self) -> bool {
        matches!(self, Error::Fault { what, .. } if what.contains(EXCLUDED_BY_DUMP))
    }

    /// Prefix the message with context ("reading task_struct at 0x…: …"), keeping the code.
    pub fn context(self, ctx: impl fmt::Display) -> Self {
        match self {
            Error::Fault { addr, what } => Error::Fault { addr, what: format!("{ctx}: {what}") },
            Error::BadData(m) => Error::BadData(format!("{ctx}: {m}")),
            Error::Unsupported(m) => Error::Unsupported(format!("{ctx}: {m}")),
            Error::NotFound(m) => Error::NotFound(format!("{ctx}: {m}")),
            Error::Io(m) => Error::Io(format!("{ctx}: {m}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Fault { addr, what } if what.contains(EXCLUDED_BY_DUMP) => write!(f, "{what} (address {addr:#x})"),
            Error::Fault { addr, what } => write!(f, "{what} (address {addr:#x} is not backed by guest memory)"),
            Error::BadData(m) | Error::Unsupported(m) | Error::NotFound(m) | Error::Io(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
