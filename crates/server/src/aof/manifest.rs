//! The multi-part AOF manifest (Redis 7.0's `appendonly.aof.manifest`) and the
//! file naming rules, as plain data: parse, render, and the changes a start-up
//! or a rewrite makes. One line per file:
//!
//! ```text
//! file appendonly.aof.1.base.rdb seq 1 type b
//! file appendonly.aof.1.incr.aof seq 1 type i
//! ```
//!
//! The base comes first, then history files (`h`, waiting for deletion), then
//! the incremental files in sequence order.

/// One file named by the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// File name inside the AOF directory (never a path).
    pub name: String,
    /// Sequence number.
    pub seq: i64,
    /// `b` base, `h` history, `i` incremental.
    pub kind: u8,
}

/// The manifest: which files make up the AOF, in load order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// The base file, if any.
    pub base: Option<FileInfo>,
    /// Files left over from rewrites, to delete.
    pub history: Vec<FileInfo>,
    /// Incremental files, oldest first.
    pub incr: Vec<FileInfo>,
    /// Highest base sequence used.
    pub base_seq: i64,
    /// Highest incr sequence used.
    pub incr_seq: i64,
}

/// Why a manifest cannot be read: the line (number, text) and Redis's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// 1-based line number and its trimmed text, when the error is on a line.
    pub line: Option<(usize, String)>,
    /// Redis's text.
    pub message: &'static str,
}

/// Base name: `appendonly.aof.<seq>.base.rdb` (or `.base.aof` without the RDB preamble).
pub fn base_name(filename: &str, seq: i64, rdb: bool) -> String {
    format!("{filename}.{seq}.base.{}", if rdb { "rdb" } else { "aof" })
}

/// Incremental file name: `appendonly.aof.<seq>.incr.aof`.
pub fn incr_name(filename: &str, seq: i64) -> String {
    format!("{filename}.{seq}.incr.aof")
}

/// The manifest's file name.
pub fn manifest_name(filename: &str) -> String {
    format!("{filename}.manifest")
}

/// Where the manifest is written before its rename.
pub fn temp_manifest_name(filename: &str) -> String {
    format!("temp-{filename}.manifest")
}

impl Manifest {
    /// Parses a manifest as Redis's `aofLoadManifestFromFile` does (same checks, same messages).
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        let mut maxseq = 0i64;
        let err = |line: Option<(usize, String)>, message| Err(ManifestError { line, message });
        if text.is_empty() {
            return err(None, "Found an empty AOF manifest");
        }
        let mut rest = text;
        let mut linenum = 0usize;
        while !rest.is_empty() {
            let (raw, next, has_nl) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..=i], &rest[i + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            rest = next;
            linenum += 1;
            if raw.first() == Some(&b'#') {
                continue;
            }
            if !has_nl || raw.len() > 1024 {
                return err(None, "The AOF manifest file contains too long line");
            }
            let line = String::from_utf8_lossy(raw)
                .trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
                .to_string();
            let here = Some((linenum, line.clone()));
            if line.is_empty() {
                return err(here, "Invalid AOF manifest file format");
            }
            let argv = match shardis_config::split_args(line.as_bytes()) {
                Some(a) if a.len() >= 6 && a.len() % 2 == 0 => a,
                _ => return err(here, "Invalid AOF manifest file format"),
            };
            let (mut name, mut seq, mut kind) = (None, 0i64, 0u8);
            for pair in argv.chunks(2) {
                let key = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
                match key.as_str() {
                    "file" => {
                        let n = String::from_utf8_lossy(&pair[1]).into_owned();
                        if n.contains('/') {
                            return err(here, "File can't be a path, just a filename");
                        }
                        name = Some(n);
                    }
                    "seq" => seq = atoll(&pair[1]),
                    "type" => kind = pair[1].first().copied().unwrap_or(0),
                    _ => {}
                }
            }
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                return err(here, "Invalid AOF manifest file format");
            };
            if seq == 0 || kind == 0 {
                return err(here, "Invalid AOF manifest file format");
            }
            let info = FileInfo { name, seq, kind };
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return err(here, "Found duplicate base file information");
                    }
                    m.base_seq = seq;
                    m.base = Some(info);
                }
                b'h' => m.history.push(info),
                b'i' => {
                    if seq <= maxseq {
                        return err(here, "Found a non-monotonic sequence number");
                    }
                    maxseq = seq;
                    m.incr_seq = seq;
                    m.incr.push(info);
                }
                _ => return err(here, "Unknown AOF file type"),
            }
        }
        Ok(m)
    }

    /// The manifest's text (base, history, incr), as Redis writes it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incr) {
            let needs_repr = f
                .name
                .bytes()
                .any(|b| !(0x21..=0x7e).contains(&b) || b == b'"' || b == b'\\' || b == b'\'');
            let name = if needs_repr {
                let mut s = String::new();
                shardis_base::repr(&mut s, f.name.as_bytes());
                s
            } else {
                f.name.clone()
            };
            out.push_str(&format!(
                "file {name} seq {} type {}\n",
                f.seq, f.kind as char
            ));
        }
        out
    }

    /// A new base name; the current base (if any) becomes history.
    pub fn new_base(&mut self, filename: &str, rdb: bool) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = b'h';
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = base_name(filename, self.base_seq, rdb);
        self.base = Some(FileInfo {
            name: name.clone(),
            seq: self.base_seq,
            kind: b'b',
        });
        name
    }

    /// A new incremental file at the end of the list.
    pub fn new_incr(&mut self, filename: &str) -> String {
        self.incr_seq += 1;
        let name = incr_name(filename, self.incr_seq);
        self.incr.push(FileInfo {
            name: name.clone(),
            seq: self.incr_seq,
            kind: b'i',
        });
        name
    }

    /// After a rewrite: every incremental file but the one being written (the
    /// last, when `keep_last`) becomes history.
    pub fn incr_to_history(&mut self, keep_last: bool) {
        let keep = usize::from(keep_last && !self.incr.is_empty());
        let moved: Vec<FileInfo> = self.incr.drain(..self.incr.len() - keep).collect();
        for mut f in moved.into_iter().rev() {
            f.kind = b'h';
            self.history.insert(0, f);
        }
    }

    /// The base and incremental files, in load order.
    pub fn load_order(&self) -> impl Iterator<Item = &FileInfo> {
        self.base.iter().chain(&self.incr)
    }
}

/// C's `atoll`: leading digits, 0 when none.
fn atoll(b: &[u8]) -> i64 {
    let s = String::from_utf8_lossy(b);
    let s = s.trim_start();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n: i64 = digits
        .bytes()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |acc, d| {
            acc.saturating_mul(10).saturating_add((d - b'0') as i64)
        });
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rewrite_steps() {
        let mut m = Manifest::default();
        assert_eq!(
            m.new_base("appendonly.aof", true),
            "appendonly.aof.1.base.rdb"
        );
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.1.incr.aof");
        let text = m.render();
        assert_eq!(
            text,
            "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n"
        );
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
        // A rewrite: a new incr at the barrier, then a new base.
        m.new_incr("appendonly.aof");
        m.new_base("appendonly.aof", true);
        m.incr_to_history(true);
        assert_eq!(
            m.render(),
            // Redis's order: each file moved to history goes to its head.
            "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
    }

    #[test]
    fn errors_are_redis_s() {
        let e = |t: &str| Manifest::parse(t.as_bytes()).unwrap_err().message;
        assert_eq!(e(""), "Found an empty AOF manifest");
        assert_eq!(e("file a seq 1\n"), "Invalid AOF manifest file format");
        assert_eq!(
            e("file a/b seq 1 type b\n"),
            "File can't be a path, just a filename"
        );
        assert_eq!(
            e("file a seq 1 type b\nfile b seq 1 type b\n"),
            "Found duplicate base file information"
        );
        assert_eq!(
            e("file a seq 2 type i\nfile b seq 1 type i\n"),
            "Found a non-monotonic sequence number"
        );
        assert_eq!(e("file a seq 1 type x\n"), "Unknown AOF file type");
        assert_eq!(
            e("file a seq 1 type b"),
            "The AOF manifest file contains too long line"
        );
        // Comments are skipped; unknown key pairs are allowed (forward compatibility).
        let m = Manifest::parse(b"# hi\nfile a seq 1 type b extra 1\n").unwrap();
        assert_eq!(m.base.unwrap().name, "a");
    }
}
