//! Byte searches for the JSON scanners (`source::framing` and `transform::record`):
//! memchr's searchers, built once and inlined where they are used.
//!
//! The scanners look for the end of a string millions of times per file, mostly a few
//! bytes away. memchr's top-level functions (`memchr2`, `memchr3`) choose their
//! implementation through a function pointer and set their needles up again on every call,
//! which cost more than the search: 17% of a reread's instructions. On x86_64 the SSE2
//! searcher (SSE2 is part of every x86_64) inlines into the scanner's loop; elsewhere the
//! top-level functions are used as before.

/// Finds the first of two bytes.
#[derive(Clone, Copy)]
pub struct Two {
    #[cfg(target_arch = "x86_64")]
    searcher: memchr::arch::x86_64::sse2::memchr::Two,
    #[cfg(not(target_arch = "x86_64"))]
    needles: (u8, u8),
}

impl Two {
    pub fn new(a: u8, b: u8) -> Two {
        #[cfg(target_arch = "x86_64")]
        return Two { searcher: memchr::arch::x86_64::sse2::memchr::Two::new(a, b).expect("SSE2 is part of x86_64") };
        #[cfg(not(target_arch = "x86_64"))]
        Two { needles: (a, b) }
    }

    /// The offset in `haystack` of the first byte that is either needle.
    #[inline(always)]
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        return self.searcher.find(haystack);
        #[cfg(not(target_arch = "x86_64"))]
        memchr::memchr2(self.needles.0, self.needles.1, haystack)
    }
}

/// Finds the first of three bytes.
#[derive(Clone, Copy)]
pub struct Three {
    #[cfg(target_arch = "x86_64")]
    searcher: memchr::arch::x86_64::sse2::memchr::Three,
    #[cfg(not(target_arch = "x86_64"))]
    needles: (u8, u8, u8),
}

impl Three {
    pub fn new(a: u8, b: u8, c: u8) -> Three {
        #[cfg(target_arch = "x86_64")]
        return Three { searcher: memchr::arch::x86_64::sse2::memchr::Three::new(a, b, c).expect("SSE2 is part of x86_64") };
        #[cfg(not(target_arch = "x86_64"))]
        Three { needles: (a, b, c) }
    }

    /// The offset in `haystack` of the first byte that is any of the needles.
    #[inline(always)]
    pub fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        return self.searcher.find(haystack);
        #[cfg(not(target_arch = "x86_64"))]
        memchr::memchr3(self.needles.0, self.needles.1, self.needles.2, haystack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_memchr_finds_at_every_distance() {
        // Each needle alone, and two of them (the first wins), at every offset around the
        // vector width; and none at all.
        for len in 0..80 {
            for at in 0..=len {
                for (first, second) in [(b'"', None), (b'\\', None), (b'\n', None), (b'\n', Some(b'"')), (b'"', Some(b'\\'))] {
                    let mut hay = vec![b'a'; len];
                    if at < len {
                        hay[at] = first;
                        if let (Some(second), true) = (second, at + 1 < len) {
                            hay[at + 1] = second;
                        }
                    }
                    assert_eq!(Two::new(b'"', b'\\').find(&hay), memchr::memchr2(b'"', b'\\', &hay), "{hay:?}");
                    assert_eq!(Three::new(b'"', b'\\', b'\n').find(&hay), memchr::memchr3(b'"', b'\\', b'\n', &hay), "{hay:?}");
                }
            }
        }
    }
}
