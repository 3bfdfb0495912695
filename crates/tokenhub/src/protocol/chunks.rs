//! Gathering a body that arrives in chunks. Most bodies (requests and upstream answers
//! alike) come in one chunk: that chunk is kept as it is, and bytes are copied only to
//! join several.

use bytes::Bytes;

#[derive(Debug, Default)]
pub struct Gathered {
    first: Option<Bytes>,
    joined: Vec<u8>,
    len: usize,
}

impl Gathered {
    /// Adds the next chunk; returns the total length so far.
    pub fn push(&mut self, chunk: Bytes) -> usize {
        self.len += chunk.len();
        if self.first.is_none() && self.joined.is_empty() {
            self.first = Some(chunk);
        } else {
            if let Some(first) = self.first.take() {
                self.joined.extend_from_slice(&first);
            }
            self.joined.extend_from_slice(&chunk);
        }
        self.len
    }

    pub fn finish(self) -> Bytes {
        match self.first {
            Some(only) => only,
            None => Bytes::from(self.joined),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chunk_is_kept_and_several_are_joined_in_order() {
        let one = Bytes::from_static(b"whole");
        let mut gathered = Gathered::default();
        assert_eq!(gathered.push(one.clone()), 5);
        let kept = gathered.finish();
        assert_eq!(kept.as_ptr(), one.as_ptr(), "not copied");

        let mut gathered = Gathered::default();
        for part in ["a", "bc", "", "def"] {
            gathered.push(Bytes::from(part));
        }
        assert_eq!(gathered.finish(), "abcdef");
        assert_eq!(Gathered::default().finish(), "");
    }
}
