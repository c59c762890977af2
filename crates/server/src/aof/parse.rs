//! Reading the command part of an AOF file as Redis's `loadSingleAppendOnlyFile`
//! does: `#` annotation lines are skipped, every command is `*<argc>` then
//! `$<len>` bulks; a file that ends inside a command is *truncated* (the
//! `aof-load-truncated` case), anything else malformed is a format error.

use bytes::Bytes;

/// One step of reading.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    /// A complete command, and the offset just past it.
    Command(Vec<Bytes>, usize),
    /// Clean end of file.
    Eof,
    /// The file ends inside a command.
    Truncated,
    /// Not AOF syntax.
    Format,
}

/// Redis reads lines with `fgets` into a buffer of this size.
const LINE_MAX: usize = 1024;

/// Reads commands from `data` starting at `pos`.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `data` from `pos`.
    pub fn new(data: &'a [u8], pos: usize) -> Reader<'a> {
        Reader { data, pos }
    }

    /// `fgets`: up to and including '\n', at most LINE_MAX-1 bytes; None at EOF.
    fn line(&mut self) -> Option<&'a [u8]> {
        if self.pos >= self.data.len() {
            return None;
        }
        let rest = &self.data[self.pos..];
        let limit = rest.len().min(LINE_MAX - 1);
        let end = rest[..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(limit, |i| i + 1);
        self.pos += end;
        Some(&rest[..end])
    }

    /// The next item.
    pub fn next_item(&mut self) -> Item {
        let line = loop {
            match self.line() {
                None => return Item::Eof,
                Some(l) if l[0] == b'#' => continue,
                Some(l) => break l,
            }
        };
        if line[0] != b'*' {
            return Item::Format;
        }
        if line.len() == 1 {
            return Item::Truncated;
        }
        let argc = atoi(&line[1..]);
        if argc < 1 {
            return Item::Format;
        }
        let mut args = Vec::with_capacity(argc.min(1024) as usize);
        for _ in 0..argc {
            let Some(l) = self.line() else {
                return Item::Truncated;
            };
            if l[0] != b'$' {
                return Item::Format;
            }
            let len = atoi(&l[1..]).max(0) as usize;
            if self.data.len() - self.pos < len {
                return Item::Truncated;
            }
            args.push(Bytes::copy_from_slice(&self.data[self.pos..self.pos + len]));
            self.pos += len;
            // The CRLF after the bulk is skipped unread, as Redis does.
            if self.data.len() - self.pos < 2 {
                return Item::Truncated;
            }
            self.pos += 2;
        }
        Item::Command(args, self.pos)
    }
}

/// C's `atoi`/`strtol` on leading digits.
fn atoi(b: &[u8]) -> i64 {
    let mut i = 0;
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    let neg = b.get(i) == Some(&b'-');
    if neg || b.get(i) == Some(&b'+') {
        i += 1;
    }
    let mut n: i64 = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((b[i] - b'0') as i64);
        i += 1;
    }
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &[u8]) -> (Vec<Vec<Bytes>>, Item) {
        let mut r = Reader::new(data, 0);
        let mut cmds = Vec::new();
        loop {
            match r.next_item() {
                Item::Command(a, _) => cmds.push(a),
                other => return (cmds, other),
            }
        }
    }

    #[test]
    fn commands_annotations_and_tails() {
        let f = b"#TS:1700000000\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";
        let (cmds, end) = all(f);
        assert_eq!(cmds.len(), 2);
        assert_eq!(end, Item::Eof);
        for cut in 1..f.len() {
            let (_, end) = all(&f[..cut]);
            // Every cut inside a command is a truncation, never a format error.
            assert!(
                matches!(end, Item::Truncated | Item::Eof),
                "cut {cut}: {end:?}"
            );
        }
        assert_eq!(all(b"SET a 1\r\n").1, Item::Format);
        assert_eq!(all(b"*1\r\nX\r\n").1, Item::Format);
        assert_eq!(all(b"*0\r\n").1, Item::Format);
    }
}
