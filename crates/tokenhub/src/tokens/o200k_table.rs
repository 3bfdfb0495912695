//! The layout of the o200k tables, shared by the build script that writes them
//! (`build.rs`) and the counter that reads them (`o200k.rs`): both must hash and probe
//! alike. Plain `std`, so the build script can include it by path.

/// Slots in the rank table: a power of two, under 40 % full.
pub const SLOTS: usize = 1 << 19;
pub const EMPTY: u32 = u32::MAX;

/// The rank table's slot for a byte string: FxHash's word-at-a-time mix, its high bits.
pub fn slot_of(bytes: &[u8]) -> usize {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut hash = bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
        hash = (hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
    let mut last = [0u8; 8];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    hash = (hash.rotate_left(5) ^ u64::from_le_bytes(last)).wrapping_mul(K);
    (hash >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The next slot to probe after `slot`.
pub fn next_slot(slot: usize) -> usize {
    (slot + 1) & (SLOTS - 1)
}
