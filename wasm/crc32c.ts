//! CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) as ext4 uses it for metadata_csum.

let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** Raw CRC-32C update with no pre/post inversion: ext4 seeds with ~0 and stores the result as is. */
export function crc32cRaw(seed: number, bytes: Uint8Array): number {
  const t = crcTable();
  let c = seed >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (t[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  return c >>> 0;
}
