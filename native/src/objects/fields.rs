//! Struct members by their BTF names (resolved once per walk) and struct copies read member by member,
//! with integer sizes, signedness and bitfields taken from the kernel's own types.

use crate::bytes::le_u64;
use crate::kernel::{Kernel, Member};
use crate::{Error, Result};

/// Largest struct copied in one go; task_struct is ~10 KiB on 6.1, ~13 KiB on 6.12.
pub const MAX_STRUCT: u64 = 256 * 1024;

/// A kernel struct type resolved from the kernel's types: its size, and its members by path.
#[derive(Clone, Copy)]
pub struct StructType<'k> {
    k: &'k Kernel,
    pub name: &'k str,
    pub size: u64,
}

impl Kernel {
    /// A struct type by name; NOT_FOUND when this kernel's types do not have it.
    pub fn struct_type<'k>(&'k self, name: &'k str) -> Result<StructType<'k>> {
        let size = self.size_of(name)?;
        if size == 0 || size > MAX_STRUCT {
            return Err(Error::bad(format!("struct {name} has an implausible size {size}")));
        }
        Ok(StructType { k: self, name, size })
    }

    /// One member read from the struct at `base`: unsigned, of the member's own size, bitfields extracted.
    pub fn read_member(&self, base: u64, m: Member) -> Result<u64> {
        let at = base.wrapping_add(m.offset);
        if m.bit_size > 0 {
            let bytes = (m.bit_offset as u64 + m.bit_size as u64).div_ceil(8).clamp(1, 8);
            let mut b = [0u8; 8];
            self.read(at, &mut b[..bytes as usize])?;
            return Ok(bitfield(u64::from_le_bytes(b), m));
        }
        self.read_uint(at, m.size)
    }

    /// A signed integer member, sign-extended from its own size.
    pub fn read_member_i64(&self, base: u64, m: Member) -> Result<i64> {
        Ok(sign_extend(self.read_member(base, m)?, m))
    }

    /// One-off read of `struct_name.path` at `base` (resolves the member on every call: use
    /// `struct_type(..).field(..)` once per walk in loops).
    pub fn field(&self, base: u64, struct_name: &str, path: &str) -> Result<u64> {
        self.read_member(base, self.member(struct_name, path)?)
    }

    /// include/linux/container_of.h: the struct that embeds the member `path` at `ptr`.
    pub fn container_of(&self, ptr: u64, struct_name: &str, path: &str) -> Result<u64> {
        Ok(ptr.wrapping_sub(self.offset(struct_name, path)?))
    }

    /// Copy the struct at `addr` out of guest memory once, to read many members from it.
    pub fn object(&self, addr: u64, t: &StructType<'_>) -> Result<Object> {
        Object::read(self, addr, t.size).map_err(|e| e.context(format!("reading struct {} at {addr:#x}", t.name)))
    }
}

impl<'k> StructType<'k> {
    /// A member by path ("se.sum_exec_runtime"; anonymous structs and unions are looked through).
    pub fn field(&self, path: &str) -> Result<Member> {
        self.k.member(self.name, path)
    }

    /// A member this kernel version may not have (None when absent).
    pub fn opt_field(&self, path: &str) -> Option<Member> {
        self.k.types.member(self.name, path)
    }

    /// The first of several names a member has had across versions (e.g. ["__state", "state"]).
    pub fn field_any(&self, paths: &[&str]) -> Result<Member> {
        paths
            .iter()
            .find_map(|p| self.opt_field(p))
            .ok_or_else(|| Error::NotFound(format!("none of {} found in struct {}", paths.join(", "), self.name)))
    }

    /// container_of for a member of this struct.
    pub fn container_of(&self, ptr: u64, m: Member) -> u64 {
        ptr.wrapping_sub(m.offset)
    }
}

fn bitfield(raw: u64, m: Member) -> u64 {
    let v = raw >> m.bit_offset.min(63);
    if m.bit_size >= 64 { v } else { v & ((1u64 << m.bit_size) - 1) }
}

fn sign_extend(v: u64, m: Member) -> i64 {
    let bits = if m.bit_size > 0 { m.bit_size as u64 } else { m.size.saturating_mul(8) };
    if bits == 0 || bits >= 64 { v as i64 } else { ((v << (64 - bits)) as i64) >> (64 - bits) }
}

/// A struct copied out of guest memory once, then read member by member with bounds checks.
pub struct Object {
    pub addr: u64,
    bytes: Vec<u8>,
}

impl Object {
    pub fn read(k: &Kernel, addr: u64, len: u64) -> Result<Self> {
        if len == 0 || len > MAX_STRUCT {
            return Err(Error::bad(format!("struct size {len} at {addr:#x} is not plausible")));
        }
        let mut bytes = vec![0u8; len as usize];
        k.read(addr, &mut bytes)?;
        Ok(Object { addr, bytes })
    }

    /// Bytes of a member (the whole array for array members).
    pub fn bytes(&self, m: Member) -> Result<&[u8]> {
        self.slice(m.offset, m.size)
    }

    fn slice(&self, off: u64, len: u64) -> Result<&[u8]> {
        let start = usize::try_from(off).map_err(|_| Error::bad("offset overflow"))?;
        let end = start.checked_add(usize::try_from(len).map_err(|_| Error::bad("length overflow"))?).ok_or_else(|| Error::bad("offset overflow"))?;
        self.bytes.get(start..end).ok_or_else(|| {
            Error::bad(format!("field at +{off:#x} (size {len}) lies outside the {}-byte struct at {:#x}", self.bytes.len(), self.addr))
        })
    }

    /// An unsigned member of its own size; bitfields extracted.
    pub fn get(&self, m: Member) -> Result<u64> {
        if m.bit_size > 0 {
            let need = (m.bit_offset as u64 + m.bit_size as u64).div_ceil(8).clamp(1, 8);
            let s = self.slice(m.offset, need)?;
            let mut b = [0u8; 8];
            b[..s.len()].copy_from_slice(s);
            return Ok(bitfield(u64::from_le_bytes(b), m));
        }
        self.uint_at(m.offset, m.size)
    }

    /// A signed member, sign-extended.
    pub fn int(&self, m: Member) -> Result<i64> {
        Ok(sign_extend(self.get(m)?, m))
    }

    /// A pointer at a raw offset (for members resolved to offsets only).
    pub fn ptr_at(&self, off: u64) -> Result<u64> {
        let start = usize::try_from(off).map_err(|_| Error::bad("offset overflow"))?;
        le_u64(&self.bytes, start).ok_or_else(|| Error::bad(format!("pointer at +{off:#x} lies outside the {}-byte struct at {:#x}", self.bytes.len(), self.addr)))
    }

    pub fn uint_at(&self, off: u64, size: u64) -> Result<u64> {
        let s = self.slice(off, size)?;
        match size {
            1 | 2 | 4 | 8 => {
                let mut b = [0u8; 8];
                b[..size as usize].copy_from_slice(s);
                Ok(u64::from_le_bytes(b))
            }
            n => Err(Error::bad(format!("unexpected integer size {n} at +{off:#x} of {:#x}", self.addr))),
        }
    }

    /// A NUL-terminated char array member (bounded by the array's size), Latin-1 like the guest's /proc text.
    pub fn cstr(&self, m: Member) -> Result<String> {
        self.cstr_at(m.offset, m.size)
    }

    pub fn cstr_at(&self, off: u64, max: u64) -> Result<String> {
        let s = self.slice(off, max)?;
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Ok(latin1(&s[..end]))
    }
}

/// Bytes as Latin-1 text: every byte survives, like ps and truth.json read them.
pub fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    #[test]
    fn members_bitfields_and_signed_values_read_by_name() {
        let mut f = Fake::new(1 << 16);
        f.size("thing", 32);
        f.member("thing", "count", 0, 4, None);
        f.member("thing", "delta", 4, 2, None);
        f.member_bits("thing", "flag", 8, 1, 3, 2);
        f.member("thing", "name", 16, 8, Some(8));
        let a = f.alloc(32);
        f.put_u32(a, 7);
        f.put(a + 4, &(-3i16).to_le_bytes());
        f.put(a + 8, &[0b0001_1000]);
        f.put(a + 16, b"abc\0zzzz");
        let k = f.kernel();
        let t = k.struct_type("thing").unwrap();
        assert_eq!(k.read_member(a, t.field("count").unwrap()).unwrap(), 7);
        assert_eq!(k.read_member_i64(a, t.field("delta").unwrap()).unwrap(), -3);
        assert_eq!(k.read_member(a, t.field("flag").unwrap()).unwrap(), 3, "bits 3..5 of byte 8");
        let o = k.object(a, &t).unwrap();
        assert_eq!(o.get(t.field("flag").unwrap()).unwrap(), 3);
        assert_eq!(o.int(t.field("delta").unwrap()).unwrap(), -3);
        assert_eq!(o.cstr(t.field("name").unwrap()).unwrap(), "abc");
        assert_eq!(k.field(a, "thing", "count").unwrap(), 7);
        assert_eq!(k.container_of(a + 16, "thing", "name").unwrap(), a);
        assert!(t.field("absent").is_err());
        assert_eq!(t.field_any(&["absent", "count"]).unwrap().offset, 0);
    }

    #[test]
    fn implausible_struct_sizes_and_out_of_struct_members_are_refused() {
        let mut f = Fake::new(1 << 16);
        f.size("huge", MAX_STRUCT + 1);
        f.size("small", 8);
        f.member("small", "past", 16, 8, None);
        let a = f.alloc(64);
        let k = f.kernel();
        assert!(k.struct_type("huge").is_err());
        let t = k.struct_type("small").unwrap();
        let o = k.object(a, &t).unwrap();
        assert!(o.get(t.field("past").unwrap()).is_err());
    }
}
