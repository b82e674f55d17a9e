//! The checksum: AEGIS-128L as a MAC with a zero key and a zero nonce, the data passed as
//! associated data, the 128-bit tag read little-endian: TigerBeetle's `vsr.checksum`
//! (`src/vsr/checksum.zig`), from the `aegis` crate rather than written here.

use aegis::aegis128l::Aegis128L;

/// The checksum of `data`.
pub fn checksum(data: &[u8]) -> u128 {
    let cipher = Aegis128L::<16>::new(&[0; 16], &[0; 16]);
    let (_, tag) = cipher.encrypt(&[], data);
    u128::from_le_bytes(tag)
}

/// The checksum of several byte strings as if they were one (a header made of parts).
pub fn checksum_parts(parts: &[&[u8]]) -> u128 {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let mut joined = Vec::with_capacity(total);
    for part in parts {
        joined.extend_from_slice(part);
    }
    checksum(&joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TigerBeetle's own test vectors (`src/vsr/checksum.zig`, "checksum test vectors"; they are
    /// written there byte-swapped).
    #[test]
    fn tigerbeetle_test_vectors() {
        assert_eq!(
            checksum(&[0u8; 16]),
            0xf72ad48dd05dd1656133101cd4be3a26_u128.swap_bytes()
        );
        assert_eq!(
            checksum(&[]),
            0x83cc600dc4e3e7e62d4055826174f149_u128.swap_bytes()
        );
        // The hard-coded empty checksum TigerBeetle returns without computing it.
        assert_eq!(checksum(&[]), 0x49F174618255402DE6E7E3C40D60CC83);
    }

    #[test]
    fn parts_equal_whole() {
        let data: Vec<u8> = (0..=255u8).collect();
        assert_eq!(
            checksum_parts(&[&data[..100], &data[100..]]),
            checksum(&data)
        );
        assert_ne!(checksum(&data[..255]), checksum(&data));
    }
}
