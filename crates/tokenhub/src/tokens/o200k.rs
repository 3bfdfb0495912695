//! The o200k_base encoding, held compactly, for counting tokens.
//!
//! tiktoken-rs keeps an encoding as two hash maps of owned byte strings, a sorted copy of
//! them and 128 clones of its splitting regex: 47 MB resident for o200k, two thirds of
//! the gateway's idle memory (bench/RESULTS.md, addendum 22). A count needs only two
//! things: the text cut into pieces by o200k's pattern, and the rank of a byte string. So
//! the build script (`build.rs`) writes every token's bytes in one buffer, where each ends
//! by rank, and an open-addressed table of ranks by the bytes' hash: 4.2 MB of read-only
//! data in the binary, paged in as counts touch it, nothing to decode at start
//! (addendum 23). The vocabulary is read from tiktoken-rs at build time (the data is
//! theirs; nothing of it is copied into this repository), and the counts are tiktoken's
//! to the token: the tests compare them on every kind of text.

use fancy_regex::Regex;

use super::o200k_table::{EMPTY, next_slot, slot_of};

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

/// Every ordinary token's bytes, in rank order.
static BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.bytes"));
/// Where each rank's bytes end in `BYTES` (they start where the previous rank's end), as
/// little-endian `u32`s.
static ENDS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.ends"));
/// Ranks by the hash of their bytes, linearly probed, as little-endian `u32`s; `EMPTY`
/// where none.
static RANK_SLOTS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/o200k.slots"));

/// The `index`th little-endian `u32` of `table`.
fn word(table: &[u8], index: usize) -> u32 {
    let at = 4 * index;
    u32::from_le_bytes(table[at..at + 4].try_into().expect("four bytes"))
}

pub struct O200k {
    pieces: Regex,
}

impl O200k {
    /// Compiles the splitting pattern; the tables are the binary's own.
    pub fn load() -> O200k {
        O200k {
            pieces: Regex::new(PATTERN).expect("o200k's pattern compiles"),
        }
    }

    /// An encoding whose matcher gives up after `limit` backtracking steps (the default
    /// is 1,000,000, which no segment reaches), to exercise what a give-up leads to.
    #[cfg(test)]
    pub fn with_backtrack_limit(limit: usize) -> O200k {
        O200k {
            pieces: fancy_regex::RegexBuilder::new(PATTERN)
                .backtrack_limit(limit)
                .build()
                .expect("o200k's pattern compiles"),
        }
    }

    fn token(&self, rank: u32) -> &'static [u8] {
        let end = word(ENDS, rank as usize) as usize;
        let start = match rank {
            0 => 0,
            _ => word(ENDS, rank as usize - 1) as usize,
        };
        &BYTES[start..end]
    }

    /// The rank of a byte string that is one token.
    fn rank(&self, piece: &[u8]) -> Option<u32> {
        let mut slot = slot_of(piece);
        loop {
            let rank = word(RANK_SLOTS, slot);
            if rank == EMPTY {
                return None;
            }
            if self.token(rank) == piece {
                return Some(rank);
            }
            slot = next_slot(slot);
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
        let ranks = u32::try_from(ENDS.len() / 4).expect("200k ranks");
        let tiktoken = tiktoken_rs::o200k_base_singleton();
        for rank in 0..ranks {
            let bytes: Vec<u8> = tiktoken
                ._decode_native_and_split(vec![rank])
                .flatten()
                .collect();
            assert_eq!(ENCODING.token(rank), bytes, "rank {rank}");
            assert_eq!(ENCODING.rank(&bytes), Some(rank));
        }
        let beyond = std::panic::catch_unwind(|| {
            tiktoken_rs::o200k_base_singleton()
                ._decode_native_and_split(vec![ranks])
                .count()
        });
        assert!(beyond.is_err(), "rank {ranks} is ordinary too");
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
