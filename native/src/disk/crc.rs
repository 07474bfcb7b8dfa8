//! Checksums the on-disk formats use: CRC-32 (GPT, UEFI spec §5.3), CRC-32C (ext4 metadata_csum), CRC-16 (ext4 uninit_bg).

/// Reflected table for a reflected polynomial.
const fn table32(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

const fn table16(poly: u16) -> [u16; 256] {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u16;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC32_IEEE: [u32; 256] = table32(0xEDB8_8320);
static CRC32C: [u32; 256] = table32(0x82F6_3B78);
static CRC16_ANSI: [u16; 256] = table16(0xA001);

/// The usual CRC-32 (zlib/GPT): init ~0, final xor ~0.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC32_IEEE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32C continued from `seed` with no final inversion, as the kernel's `ext4_chksum` computes it.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    let mut c = seed;
    for &b in data {
        c = CRC32C[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    c
}

/// CRC-16 (poly 0x8005 reflected) continued from `seed`, as lib/crc16.c computes it.
pub fn crc16(seed: u16, data: &[u8]) -> u16 {
    let mut c = seed;
    for &b in data {
        c = (c >> 8) ^ CRC16_ANSI[((c ^ b as u16) & 0xFF) as usize];
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
    }
}
