//! Raw RAM file layouts: how QEMU (hw/i386/pc_piix.c, pc_q35.c) and Firecracker (arch/x86_64/layout.rs)
//! place a flat memory file in guest-physical space around the PCI/MMIO hole below 4 GiB.

use super::Segment;
use crate::{Error, Result};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const FOUR_GIB: u64 = 4 * GIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutKind {
    Flat,
    QemuPc,
    QemuQ35,
    Firecracker,
}

impl LayoutKind {
    fn name(self) -> &'static str {
        match self {
            LayoutKind::Flat => "flat",
            LayoutKind::QemuPc => "qemu-pc",
            LayoutKind::QemuQ35 => "qemu-q35",
            LayoutKind::Firecracker => "firecracker",
        }
    }
}

/// A raw layout: bytes [0, split) of the file at GPA 0, the rest at `high_base`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLayout {
    pub kind: LayoutKind,
    /// Bytes of the file placed below the hole (None = no split: the whole file at GPA 0).
    pub split: Option<u64>,
    pub high_base: u64,
    /// True when chosen by `auto`.
    pub guessed: bool,
    /// Why this layout (for `auto`), shown in the facts.
    pub reason: String,
}

impl RawLayout {
    /// Parse `auto`, `flat`, `qemu-pc`, `qemu-q35`, `firecracker`, `firecracker-1.12` or `NAME:SPLIT`
    /// (SPLIT like `3G`, `3.5G`, `2048M`, `0xc0000000`) for a file of `file_len` bytes.
    pub fn parse(spec: &str, file_len: u64) -> Result<RawLayout> {
        let spec = spec.trim();
        let (name, split) = match spec.split_once(':') {
            Some((n, s)) => (n, Some(parse_size(s)?)),
            None => (spec, None),
        };
        let name = name.to_ascii_lowercase();
        let auto = name.is_empty() || name == "auto";
        let kind = match name.as_str() {
            "" | "auto" | "qemu-pc" | "pc" | "qemu" | "libvirt" => LayoutKind::QemuPc,
            "flat" => LayoutKind::Flat,
            "qemu-q35" | "q35" => LayoutKind::QemuQ35,
            "firecracker" | "firecracker-1.12" | "fc" => LayoutKind::Firecracker,
            other => {
                return Err(Error::Unsupported(format!(
                    "unknown RAM layout \"{other}\" (known: auto, flat, qemu-pc, qemu-q35, firecracker, firecracker-1.12, NAME:SPLIT)"
                )))
            }
        };
        let split = match (kind, split) {
            (LayoutKind::Flat, Some(_)) => return Err(Error::Unsupported("the flat layout takes no split".into())),
            (LayoutKind::Flat, None) => None,
            (_, Some(s)) => {
                if s == 0 || s > FOUR_GIB {
                    return Err(Error::Unsupported(format!("RAM layout split {s:#x} must be within (0, 4 GiB]")));
                }
                Some(s)
            }
            (LayoutKind::QemuPc, None) => Some(if file_len >= 0xE000_0000 { 3 * GIB } else { 0xE000_0000 }),
            (LayoutKind::QemuQ35, None) => Some(if file_len >= 0xB000_0000 { 2 * GIB } else { 0xB000_0000 }),
            (LayoutKind::Firecracker, None) => Some(if name == "firecracker-1.12" { 0xD000_0000 } else { 0xC000_0000 }),
        };
        let reason = if auto {
            if file_len <= 0xB000_0000 {
                format!("auto: a {} file ends below every PCI hole, so offset = guest-physical address", human(file_len))
            } else {
                format!("auto: a {} file is assumed to be QEMU pc; say --ram-layout qemu-q35 or firecracker otherwise", human(file_len))
            }
        } else {
            String::new()
        };
        // A file that ends below every PCI hole is flat whatever the machine: say so plainly.
        let (kind, split) = if auto && file_len <= 0xB000_0000 { (LayoutKind::Flat, None) } else { (kind, split) };
        Ok(RawLayout { kind, split, high_base: FOUR_GIB, guessed: auto, reason })
    }

    /// One line for the facts: "qemu-pc (split 3 GiB, rest at 4 GiB)" plus why when guessed.
    pub fn describe(&self) -> String {
        let mut s = self.kind.name().to_string();
        if let Some(split) = self.split {
            s.push_str(&format!(", below-4G split at {}", human(split)));
        }
        if !self.reason.is_empty() {
            s.push_str(&format!(" ({})", self.reason));
        }
        s
    }
}

/// The file's segments under `layout`.
pub fn segments(layout: &RawLayout, file_len: u64) -> Vec<Segment> {
    match layout.split {
        Some(split) if file_len > split => vec![
            Segment { gpa: 0, file_offset: 0, len: split },
            Segment { gpa: layout.high_base, file_offset: split, len: file_len - split },
        ],
        _ => vec![Segment { gpa: 0, file_offset: 0, len: file_len }],
    }
}

/// "3G", "3.5G", "2048M", "512K", "0xc0000000", "3221225472".
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let bad = || Error::Unsupported(format!("cannot read \"{s}\" as a size (try 3G, 3.5G, 2048M or 0xc0000000)"));
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map_err(|_| bad());
    }
    let (num, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], t[i..].to_ascii_lowercase()),
        None => (t, String::new()),
    };
    let mult: u64 = match unit.trim_end_matches("ib").trim_end_matches('b') {
        "" => 1,
        "k" => 1 << 10,
        "m" => MIB,
        "g" => GIB,
        "t" => GIB << 10,
        _ => return Err(bad()),
    };
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let v = f * mult as f64;
    if !(v.is_finite() && v >= 0.0 && v < u64::MAX as f64) || v.fract() != 0.0 {
        return Err(bad());
    }
    Ok(v as u64)
}

fn human(n: u64) -> String {
    if n % GIB == 0 {
        format!("{} GiB", n / GIB)
    } else if n > GIB && n % (GIB / 4) == 0 {
        format!("{} GiB", n as f64 / GIB as f64)
    } else if n % MIB == 0 {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n:#x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(spec: &str, len: u64) -> Vec<(u64, u64, u64)> {
        let l = RawLayout::parse(spec, len).unwrap();
        segments(&l, len).iter().map(|s| (s.gpa, s.file_offset, s.len)).collect()
    }

    #[test]
    fn qemu_pc_splits() {
        assert_eq!(segs("qemu-pc", 256 * MIB), vec![(0, 0, 256 * MIB)]);
        assert_eq!(segs("qemu-pc", 0xE000_0000), vec![(0, 0, 3 * GIB), (FOUR_GIB, 3 * GIB, 0xE000_0000 - 3 * GIB)]);
        assert_eq!(segs("qemu-pc", 5 * GIB), vec![(0, 0, 3 * GIB), (FOUR_GIB, 3 * GIB, 2 * GIB)]);
        assert_eq!(segs("qemu-pc", 0xDFFF_F000), vec![(0, 0, 0xDFFF_F000)]);
        assert_eq!(segs("auto", 5 * GIB), vec![(0, 0, 3 * GIB), (FOUR_GIB, 3 * GIB, 2 * GIB)]);
    }

    #[test]
    fn q35_and_firecracker_splits() {
        assert_eq!(segs("qemu-q35", 0xA000_0000), vec![(0, 0, 0xA000_0000)]);
        assert_eq!(segs("q35", 3 * GIB), vec![(0, 0, 2 * GIB), (FOUR_GIB, 2 * GIB, GIB)]);
        assert_eq!(segs("firecracker", 4 * GIB), vec![(0, 0, 3 * GIB), (FOUR_GIB, 3 * GIB, GIB)]);
        assert_eq!(segs("firecracker-1.12", 4 * GIB), vec![(0, 0, 0xD000_0000), (FOUR_GIB, 0xD000_0000, 0x3000_0000)]);
        assert_eq!(segs("flat", 5 * GIB), vec![(0, 0, 5 * GIB)]);
    }

    #[test]
    fn explicit_split() {
        assert_eq!(segs("qemu-pc:3G", 4 * GIB), vec![(0, 0, 3 * GIB), (FOUR_GIB, 3 * GIB, GIB)]);
        assert_eq!(segs("qemu-pc:2.5G", 3 * GIB), vec![(0, 0, 2 * GIB + GIB / 2), (FOUR_GIB, 2 * GIB + GIB / 2, GIB / 2)]);
        assert_eq!(segs("firecracker:0xd0000000", 4 * GIB)[0], (0, 0, 0xD000_0000));
        assert!(RawLayout::parse("qemu-pc:5G", GIB).is_err());
        assert!(RawLayout::parse("qemu-pc:abc", GIB).is_err());
        assert!(RawLayout::parse("flat:1G", GIB).is_err());
        assert!(RawLayout::parse("vmware", GIB).is_err());
        assert!(RawLayout::parse("qemu-pc:1.0000001K", GIB).is_err());
    }

    #[test]
    fn auto_says_what_it_assumed() {
        let l = RawLayout::parse("auto", 256 * MIB).unwrap();
        assert!(l.guessed);
        assert_eq!(l.kind, LayoutKind::Flat);
        assert!(l.describe().starts_with("flat (auto: a 256 MiB file"), "{}", l.describe());
        assert!(l.describe().contains("auto"), "{}", l.describe());
        assert_eq!(parse_size("2048M").unwrap(), 2 * GIB);
        assert_eq!(parse_size("3.5GiB").unwrap(), 0xE000_0000);
    }
}
