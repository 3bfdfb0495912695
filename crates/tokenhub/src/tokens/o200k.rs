//! The o200k_base encoding, held compactly, for counting tokens.
//!
//! tiktoken-rs keeps an encoding as two hash maps of owned byte strings, a sorted copy of
//! them and 128 clones of its splitting regex: 47 MB resident for o200k, two thirds of
//! the gateway's idle memory (bench/RESULTS.md, addendum 22). A count needs only two
//! things: the text cut into pieces by o200k's pattern, and the rank of a byte string. So
//! this keeps every token's bytes in one buffer, where each ends by rank, and an
//! open-addressed table of ranks by the bytes' hash: about 4.5 MB. The vocabulary is read
//! once from tiktoken-rs's own encoder, which is then dropped (the data is theirs; nothing
//! of it is copied into this repository), and the counts are tiktoken's to the token: the
//! tests compare them on every kind of text.

use fancy_regex::Regex;

/// o200k's ordinary tokens have the ranks `0..MERGEABLE_RANKS` (its special tokens,
/// 199,999 and 200,018, never come out of ordinary text). A test checks the bound.
const MERGEABLE_RANKS: u32 = 199_998;

/// How o200k cuts text into pieces before merging bytes (OpenAI's published pattern):
/// words with their leading punctuation and contraction, numbers of up to three digits,
/// punctuation runs, newlines, and whitespace that leaves its last character to the next
/// word.
const PATTERN: &str = concat!(
    r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
    r"|\p{N}{1,3}",
    r"| ?[^\s\p{L}\p{N}]+[\r\n/]*",
    r"|\s*[\r\n]+",
    r"|\s+(?!\S)",
    r"|\s+",
);

/// Slots in the rank table: a power of two, under 40 % full.
const SLOTS: usize = 1 << 19;
const EMPTY: u32 = u32::MAX;

pub struct O200k {
    /// Every token's bytes, in rank order.
    bytes: Vec<u8>,
    /// Where each rank's bytes end in `bytes` (they start where the previous rank's end).
    ends: Vec<u32>,
    /// Ranks by the hash of their bytes, linearly probed; `EMPTY` where none.
    slots: Vec<u32>,
    pieces: Regex,
}

impl O200k {
    /// Reads the vocabulary out of tiktoken-rs's encoder (about 330 ms in a release build; a blocking
    /// context's work) and lets that go.
    pub fn load() -> O200k {
        let source = tiktoken_rs::o200k_base().expect("tiktoken-rs ships o200k_base");
        let mut bytes = Vec::with_capacity(1 << 21);
        let mut ends = Vec::with_capacity(MERGEABLE_RANKS as usize);
        for rank in 0..MERGEABLE_RANKS {
            for token in source._decode_native_and_split(vec![rank]) {
                bytes.extend_from_slice(&token);
            }
            ends.push(u32::try_from(bytes.len()).expect("o200k is a few MB"));
        }
        drop(source);
        bytes.shrink_to_fit();
        let mut encoding = O200k {
            bytes,
            ends,
            slots: vec![EMPTY; SLOTS],
            pieces: Regex::new(PATTERN).expect("o200k's pattern compiles"),
        };
        for rank in 0..MERGEABLE_RANKS {
            encoding.insert(rank);
        }
        encoding
    }

    fn token(&self, rank: u32) -> &[u8] {
        let end = self.ends[rank as usize] as usize;
        let start = match rank {
            0 => 0,
            _ => self.ends[rank as usize - 1] as usize,
        };
        &self.bytes[start..end]
    }

    fn insert(&mut self, rank: u32) {
        let mut slot = slot_of(self.token(rank));
        while self.slots[slot] != EMPTY {
            slot = (slot + 1) & (SLOTS - 1);
        }
        self.slots[slot] = rank;
    }

    /// The rank of a byte string that is one token.
    fn rank(&self, piece: &[u8]) -> Option<u32> {
        let mut slot = slot_of(piece);
        loop {
            let rank = self.slots[slot];
            if rank == EMPTY {
                return None;
            }
            if self.token(rank) == piece {
                return Some(rank);
            }
            slot = (slot + 1) & (SLOTS - 1);
        }
    }

    /// How many tokens o200k encodes `text` in (as tiktoken's `encode_ordinary(text).len()`),
    /// or `None` when the pattern's matcher gives up (its backtracking limit).
    pub fn count(&self, text: &str) -> Option<u64> {
        let mut tokens = 0;
        for piece in self.pieces.find_iter(text) {
            let piece = piece.ok()?.as_str().as_bytes();
            tokens += match self.rank(piece) {
                Some(_) => 1,
                None => self.merged_len(piece),
            };
        }
        Some(tokens)
    }

    /// Tokens of a piece that is not one token: byte-pair merging by rank, the adjacent
    /// pair whose bytes have the lowest rank first (the leftmost of equals), until no
    /// adjacent pair is a token.
    fn merged_len(&self, piece: &[u8]) -> u64 {
        // Where each token of the piece starts, and the piece's end.
        let mut starts: Vec<usize> = (0..=piece.len()).collect();
        let pair_rank = |starts: &[usize], at: usize| {
            self.rank(&piece[starts[at]..starts[at + 2]])
                .unwrap_or(EMPTY)
        };
        let mut pair_ranks: Vec<u32> = (0..piece.len().saturating_sub(1))
            .map(|at| pair_rank(&starts, at))
            .collect();
        while let Some((at, &lowest)) = pair_ranks.iter().enumerate().min_by_key(|(_, rank)| **rank)
        {
            if lowest == EMPTY {
                break;
            }
            starts.remove(at + 1);
            pair_ranks.remove(at);
            if at > 0 {
                pair_ranks[at - 1] = pair_rank(&starts, at - 1);
            }
            if at < pair_ranks.len() {
                pair_ranks[at] = pair_rank(&starts, at);
            }
        }
        (starts.len() - 1) as u64
    }
}

/// The rank table's slot for a byte string: FxHash's word-at-a-time mix, its high bits.
fn slot_of(bytes: &[u8]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static ENCODING: LazyLock<O200k> = LazyLock::new(O200k::load);

    fn tiktoken(text: &str) -> u64 {
        tiktoken_rs::o200k_base_singleton()
            .encode_ordinary(text)
            .len() as u64
    }

    fn assert_same(text: &str) {
        assert_eq!(ENCODING.count(text), Some(tiktoken(text)), "{text:?}");
    }

    #[test]
    fn every_ordinary_rank_is_read_and_found_by_its_bytes_and_none_beyond() {
        // `load` reads every rank below the bound (a missing one would panic there).
        for rank in 0..MERGEABLE_RANKS {
            assert_eq!(ENCODING.rank(ENCODING.token(rank)), Some(rank));
        }
        let beyond = std::panic::catch_unwind(|| {
            tiktoken_rs::o200k_base_singleton()
                ._decode_native_and_split(vec![MERGEABLE_RANKS])
                .count()
        });
        assert!(beyond.is_err(), "rank {MERGEABLE_RANKS} is ordinary too");
    }

    #[test]
    fn counts_what_tiktoken_counts() {
        for text in [
            "",
            "Hello world",
            "The quick brown fox jumps over the lazy dog.",
            "  leading spaces and trailing   ",
            "line one\nline two\r\n\r\n  indented\n\n\n",
            "I'm sure they'll say it's what we'd've DONE'S",
            "1234567890 3.14159 -42 1e10 0x1F",
            "fn main() { println!(\"{}\", x + 1); } // comment",
            "<div class=\"a\">&nbsp;</div>\t\ttabs",
            "汉字的文本，中文标点。日本語のテキスト、カタカナ。한국어 텍스트",
            "emoji 😀👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵",
            "Ünïcödé àccents ñ ß ǅ ǈ Ⅻ ⅻ ① ²³",
            "ʰᵉˡˡᵒ Lm letters and marks: e\u{301} a\u{308}\u{323}",
            "https://example.com/path?q=1&r=two#frag",
            "    \n    \n\n",
            "a\u{a0}b\u{2003}c\u{3000}d",
            "!!!???...---___===+++///",
            "x".repeat(500).as_str(),
            "ab".repeat(300).as_str(),
        ] {
            assert_same(text);
        }
    }

    #[test]
    fn counts_what_tiktoken_counts_on_random_text() {
        // A fixed-seed generator (xorshift) over characters of every class the pattern
        // tells apart: letters of each case, marks, digits, spaces, newlines, punctuation,
        // CJK, emoji, and apostrophes for the contractions.
        const ALPHABET: &[&str] = &[
            "a", "e", "t", "s", "q", "Z", "A", "É", "ǅ", "ʰ", "\u{301}", "0", "7", "٣", " ", " ",
            " ", "\n", "\r", "\t", "\u{a0}", "'", "’", ".", ",", "!", "/", "-", "_", "中", "文",
            "😀", "🏽", "\u{200d}", "s", "t", "re", "ll", "d", "m", "ve",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..3_000 {
            let length = 1 + next() % 60;
            let text: String = (0..length)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            assert_same(&text);
        }
    }
}
