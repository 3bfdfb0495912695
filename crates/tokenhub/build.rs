//! Writes the o200k tables the token counter reads (`src/tokens/o200k.rs`) into OUT_DIR:
//! every ordinary token's bytes in rank order, where each ends, and the rank table by
//! hash. The vocabulary is tiktoken-rs's, read here at build time: the binary then carries
//! 4.2 MB of tables that are paged in as counts touch them, instead of decoding the
//! vocabulary's text into heap tables at every start (bench/RESULTS.md, addendum 23).

#[path = "src/tokens/o200k_table.rs"]
mod o200k_table;

use std::path::Path;

use o200k_table::{EMPTY, SLOTS, next_slot, slot_of};

/// o200k's ordinary tokens have the ranks `0..MERGEABLE_RANKS` (its special tokens,
/// 199,999 and 200,018, never come out of ordinary text). A test checks the bound.
const MERGEABLE_RANKS: u32 = 199_998;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tokens/o200k_table.rs");
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let out = Path::new(&out);

    let vocabulary = tiktoken_rs::o200k_base().expect("tiktoken-rs ships o200k_base");
    let mut bytes = Vec::with_capacity(1 << 21);
    let mut ends = Vec::with_capacity(MERGEABLE_RANKS as usize);
    for rank in 0..MERGEABLE_RANKS {
        bytes.extend(vocabulary._decode_native_and_split(vec![rank]).flatten());
        ends.push(u32::try_from(bytes.len()).expect("o200k is a few MB"));
    }
    let slots = rank_slots(&bytes, &ends);

    let little_endian =
        |words: &[u32]| -> Vec<u8> { words.iter().flat_map(|w| w.to_le_bytes()).collect() };
    for (name, data) in [
        ("o200k.bytes", bytes),
        ("o200k.ends", little_endian(&ends)),
        ("o200k.slots", little_endian(&slots)),
    ] {
        std::fs::write(out.join(name), data).expect("OUT_DIR is writable");
    }
}

/// Ranks by the hash of their bytes, linearly probed (as `o200k.rs` looks them up).
fn rank_slots(bytes: &[u8], ends: &[u32]) -> Vec<u32> {
    let mut slots = vec![EMPTY; SLOTS];
    let mut start = 0;
    for (rank, &end) in (0..).zip(ends) {
        let mut slot = slot_of(&bytes[start..end as usize]);
        while slots[slot] != EMPTY {
            slot = next_slot(slot);
        }
        slots[slot] = rank;
        start = end as usize;
    }
    slots
}
