//! Which bytes of a file a request asks for: the `Range` header (RFC 9110
//! §14.2), one range only. A CPE resuming a firmware download sends
//! `bytes=N-`; multi-range requests are answered with the whole file, as
//! the RFC allows (no CPE asks for several).

/// What to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// 200, the whole file.
    Whole,
    /// 206, bytes `start..=end`.
    Range { start: u64, end: u64 },
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// The part of a file of `size` bytes that `header` (the `Range` value,
/// if any) asks for. A header that is not a byte range is ignored.
pub fn part(header: Option<&str>, size: u64) -> Part {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return Part::Whole;
    };
    if spec.contains(',') {
        return Part::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Part::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    match (first.is_empty(), number(first), number(last)) {
        // `-N`: the last N bytes.
        (true, _, Some(n)) if n > 0 && size > 0 => Part::Range {
            start: size.saturating_sub(n),
            end: size - 1,
        },
        (true, _, Some(_)) => Part::Unsatisfiable,
        (false, Some(start), _) if start >= size => Part::Unsatisfiable,
        (false, Some(start), None) if last.is_empty() => Part::Range {
            start,
            end: size - 1,
        },
        (false, Some(start), Some(end)) if end >= start => Part::Range {
            start,
            end: end.min(size - 1),
        },
        _ => Part::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_cpes_send() {
        assert_eq!(part(None, 100), Part::Whole);
        assert_eq!(
            part(Some("bytes=0-"), 100),
            Part::Range { start: 0, end: 99 }
        );
        assert_eq!(
            part(Some("bytes=40-"), 100),
            Part::Range { start: 40, end: 99 }
        );
        assert_eq!(
            part(Some("bytes=10-19"), 100),
            Part::Range { start: 10, end: 19 }
        );
        assert_eq!(
            part(Some("bytes=90-500"), 100),
            Part::Range { start: 90, end: 99 }
        );
        assert_eq!(
            part(Some("bytes=-10"), 100),
            Part::Range { start: 90, end: 99 }
        );
        assert_eq!(
            part(Some("bytes=-500"), 100),
            Part::Range { start: 0, end: 99 }
        );
        assert_eq!(part(Some("bytes=100-"), 100), Part::Unsatisfiable);
        assert_eq!(part(Some("bytes=-0"), 100), Part::Unsatisfiable);
        assert_eq!(part(Some("bytes=0-"), 0), Part::Unsatisfiable);
        // Not something to honour: the whole file.
        assert_eq!(part(Some("bytes=20-10"), 100), Part::Whole);
        assert_eq!(part(Some("bytes=0-1,5-6"), 100), Part::Whole);
        assert_eq!(part(Some("items=0-1"), 100), Part::Whole);
        assert_eq!(part(Some("bytes=x-"), 100), Part::Whole);
        assert_eq!(part(Some("bytes=+1-2"), 100), Part::Whole);
        assert_eq!(
            part(Some("bytes=99999999999999999999999-"), 100),
            Part::Whole
        );
    }

    proptest! {
        #[test]
        fn a_range_is_always_inside_the_file(h in "bytes=[0-9-]{0,12}", size in 0u64..10_000) {
            if let Part::Range { start, end } = part(Some(&h), size) {
                prop_assert!(start <= end && end < size);
            }
        }
    }
}
