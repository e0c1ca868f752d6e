//! Storage for the many-millions-long tables (transfer records, the log, id and metadata
//! bytes) that grows without ever copying what it holds. A plain `Vec` doubles by copying:
//! at ten million transfers that is a pause of hundreds of milliseconds and, for a moment,
//! twice the memory. Fixed-size chunks make every push cheap and peak memory the live size.

use std::ops::{Index, IndexMut};

const CHUNK_ITEMS_SHIFT: usize = 16;
/// Items per chunk.
pub const CHUNK_ITEMS: usize = 1 << CHUNK_ITEMS_SHIFT;

pub struct Chunked<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new(), len: 0 }
    }
}

impl<T> Chunked<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn push(&mut self, item: T) {
        if self.len == self.chunks.len() << CHUNK_ITEMS_SHIFT {
            self.chunks.push(Vec::with_capacity(CHUNK_ITEMS));
        }
        self.chunks.last_mut().expect("a chunk with room exists").push(item);
        self.len += 1;
    }

    pub fn pop(&mut self) -> Option<T> {
        let last = self.chunks.last_mut()?;
        let item = last.pop()?;
        if last.is_empty() {
            self.chunks.pop();
        }
        self.len -= 1;
        Some(item)
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// The number of leading items for which `pred` holds (it must hold for a prefix only).
    pub fn partition_point(&self, pred: impl Fn(&T) -> bool) -> usize {
        let (mut low, mut high) = (0, self.len);
        while low < high {
            let middle = low + (high - low) / 2;
            if pred(&self[middle]) {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    /// The bytes its chunks allocated: whole chunks, as they are allocated.
    pub fn allocated_bytes(&self) -> usize {
        self.chunks.len() * CHUNK_ITEMS * std::mem::size_of::<T>()
    }
}

impl<T> Index<usize> for Chunked<T> {
    type Output = T;
    fn index(&self, index: usize) -> &T {
        &self.chunks[index >> CHUNK_ITEMS_SHIFT][index & (CHUNK_ITEMS - 1)]
    }
}

impl<T> IndexMut<usize> for Chunked<T> {
    fn index_mut(&mut self, index: usize) -> &mut T {
        &mut self.chunks[index >> CHUNK_ITEMS_SHIFT][index & (CHUNK_ITEMS - 1)]
    }
}

/// Bytes in one chunk of `Strings`. A string never spans two chunks, so the few bytes left at
/// the end of a chunk (at most one maximal metadata object) go unused.
pub const STRING_CHUNK_BYTES: usize = 1 << 20;

/// Two adjacent strings in `Strings` (a transfer's id and its metadata) in 64 bits: 43 of
/// offset (8 TiB), 8 of first length (ids are at most 128 bytes), 13 of second length
/// (metadata is at most 4,096 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Span(pub(crate) u64);

impl Span {
    pub(crate) fn new(offset: usize, first: usize, second: usize) -> Span {
        assert!(offset < (1 << 43) && first < (1 << 8) && second < (1 << 13), "span fields fit their widths");
        Span(((offset as u64) << 21) | ((first as u64) << 13) | second as u64)
    }
    pub(crate) fn offset(self) -> usize {
        (self.0 >> 21) as usize
    }
    pub(crate) fn first_len(self) -> usize {
        ((self.0 >> 13) & 0xff) as usize
    }
    pub(crate) fn second_len(self) -> usize {
        (self.0 & 0x1fff) as usize
    }
    /// Both strings' length together.
    pub(crate) fn len(self) -> usize {
        self.first_len() + self.second_len()
    }
}

/// The bytes of every transfer id and metadata object, in one place instead of millions of
/// small allocations.
#[derive(Default)]
pub struct Strings {
    chunks: Vec<Vec<u8>>,
    /// Chunks below this one were released (their strings now live elsewhere).
    released: usize,
}

impl Strings {
    /// The bytes its chunks allocated.
    pub fn allocated_bytes(&self) -> usize {
        (self.chunks.len() - self.released) * STRING_CHUNK_BYTES
    }

    /// Stores two strings side by side (a transfer's id and metadata, which may be empty).
    pub fn push(&mut self, first: &str, second: &str) -> Span {
        let len = first.len() + second.len();
        assert!(len <= STRING_CHUNK_BYTES);
        let fits = self.chunks.last().is_some_and(|c| c.len() + len <= STRING_CHUNK_BYTES);
        if !fits {
            self.chunks.push(Vec::with_capacity(STRING_CHUNK_BYTES));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = self.chunks.last_mut().expect("pushed above");
        let span = Span::new(chunk_index * STRING_CHUNK_BYTES + chunk.len(), first.len(), second.len());
        chunk.extend_from_slice(first.as_bytes());
        chunk.extend_from_slice(second.as_bytes());
        span
    }

    fn slice(&self, span: Span, skip: usize, len: usize) -> Option<&[u8]> {
        let chunk = self.chunks.get(span.offset() / STRING_CHUNK_BYTES)?;
        let start = span.offset() % STRING_CHUNK_BYTES + skip;
        chunk.get(start..start + len)
    }

    /// The first string of a span; `None` if it lies outside what is stored.
    pub fn first(&self, span: Span) -> Option<&[u8]> {
        self.slice(span, 0, span.first_len())
    }

    /// The second string of a span (empty if none was given).
    pub fn second(&self, span: Span) -> Option<&[u8]> {
        self.slice(span, span.first_len(), span.second_len())
    }

    /// Both strings of a span, back to back.
    pub fn both(&self, span: Span) -> Option<&[u8]> {
        self.slice(span, 0, span.len())
    }

    /// Frees every chunk wholly before `span`, whose strings are no longer read from here.
    pub fn release_below(&mut self, span: Span) {
        let below = span.offset() / STRING_CHUNK_BYTES;
        for chunk in self.chunks.iter_mut().take(below).skip(self.released) {
            *chunk = Vec::new();
        }
        self.released = self.released.max(below);
    }

    /// Forgets everything from `span` on (it must be the latest span pushed).
    pub fn truncate_to(&mut self, span: Span) {
        let chunk_index = span.offset() / STRING_CHUNK_BYTES;
        self.chunks.truncate(chunk_index + 1);
        self.chunks[chunk_index].truncate(span.offset() % STRING_CHUNK_BYTES);
    }

    pub fn chunks(&self) -> &[Vec<u8>] {
        &self.chunks
    }

    pub fn from_chunks(chunks: Vec<Vec<u8>>) -> Option<Strings> {
        chunks.iter().all(|c| c.len() <= STRING_CHUNK_BYTES).then_some(Strings { chunks, released: 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_behaves_like_a_vec_across_chunk_boundaries() {
        let mut chunked = Chunked::default();
        let mut plain = Vec::new();
        for n in 0..(CHUNK_ITEMS * 2 + 7) {
            chunked.push(n);
            plain.push(n);
        }
        for _ in 0..CHUNK_ITEMS + 9 {
            assert_eq!(chunked.pop(), plain.pop());
        }
        chunked[5] = 99;
        plain[5] = 99;
        assert_eq!(chunked.len(), plain.len());
        assert!(chunked.iter().eq(plain.iter()));
    }

    #[test]
    fn strings_never_span_chunks_and_truncate_back() {
        let mut strings = Strings::default();
        let big = "x".repeat(4_000);
        let id = "i".repeat(128);
        let spans: Vec<Span> = (0..600).map(|_| strings.push(&id, &big)).collect();
        assert!(strings.chunks().len() > 1);
        assert!(spans.iter().all(|s| strings.first(*s) == Some(id.as_bytes()) && strings.second(*s) == Some(big.as_bytes())));
        let last = *spans.last().unwrap();
        strings.truncate_to(last);
        assert_eq!(strings.first(last), None);
        assert_eq!(strings.push(&id, &big), last, "a span pushed after truncation takes the same place");
        let empty = strings.push("x", "");
        assert_eq!(strings.second(empty), Some(&b""[..]));
    }
}
