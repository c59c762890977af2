//! Reply formatting, byte for byte as redis-cli 7.0 prints it.
//!
//! Two modes: the human ("TTY") format, used when stdout is a terminal or with `--no-raw`, and the
//! raw format, used when stdout is not a terminal or with `--raw`. A few commands whose reply is a
//! preformatted text block (INFO, CLIENT LIST, ...) are always printed raw, without the trailing
//! command delimiter, as redis-cli does.

use crate::resp::Reply;

/// Why a reply cannot be printed: redis-cli 7.0 has no format for RESP3 big numbers and exits.
#[derive(Debug, PartialEq)]
pub struct UnknownType(pub i32);

/// hiredis' numeric type for a big number, which redis-cli prints in its error.
const REDIS_REPLY_BIGNUM: i32 = 13;

/// Quotes `s` like Redis' `sdscatrepr`: printable ASCII as is, C escapes, else `\xNN`.
pub fn repr(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    for &c in s {
        match c {
            b'\\' | b'"' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
    out
}

/// Human format (`cliFormatReplyTTY`): `(integer) 1`, `"quoted"`, `1) ` numbered nesting.
pub fn tty(r: &Reply) -> Result<Vec<u8>, UnknownType> {
    let mut out = Vec::new();
    tty_into(&mut out, r, "")?;
    Ok(out)
}

fn tty_into(out: &mut Vec<u8>, r: &Reply, prefix: &str) -> Result<(), UnknownType> {
    match r {
        Reply::Error(e) => {
            out.extend_from_slice(b"(error) ");
            out.extend_from_slice(e);
            out.push(b'\n');
        }
        Reply::Status(s) | Reply::Verbatim(s) => {
            out.extend_from_slice(s);
            out.push(b'\n');
        }
        Reply::Integer(i) => out.extend_from_slice(format!("(integer) {i}\n").as_bytes()),
        Reply::Double(d) => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(d);
            out.push(b'\n');
        }
        Reply::Bulk(s) => {
            out.extend_from_slice(&repr(s));
            out.push(b'\n');
        }
        Reply::Nil => out.extend_from_slice(b"(nil)\n"),
        Reply::Bool(b) => out.extend_from_slice(if *b { b"(true)\n" } else { b"(false)\n" }),
        Reply::BigNumber(_) => return Err(UnknownType(REDIS_REPLY_BIGNUM)),
        Reply::Array(items) | Reply::Map(items) | Reply::Set(items) | Reply::Push(items) => {
            let is_map = matches!(r, Reply::Map(_));
            if items.is_empty() {
                out.extend_from_slice(match r {
                    Reply::Map(_) => b"(empty hash)\n".as_slice(),
                    Reply::Set(_) => b"(empty set)\n",
                    Reply::Push(_) => b"(empty push)\n",
                    _ => b"(empty array)\n",
                });
                return Ok(());
            }
            let count = if is_map { items.len() / 2 } else { items.len() };
            let idxlen = count.to_string().len();
            let sep = match r {
                Reply::Set(_) => '~',
                Reply::Map(_) => '#',
                _ => ')',
            };
            // Nested replies are indented past this level's "N) " column.
            let child_prefix = format!("{prefix}{}", " ".repeat(idxlen + 2));
            let step = if is_map { 2 } else { 1 };
            for (n, chunk) in items.chunks(step).enumerate() {
                // The first entry follows the parent's own "N) " on the same line.
                let lead = if n == 0 { "" } else { prefix };
                out.extend_from_slice(format!("{lead}{:>idxlen$}{sep} ", n + 1).as_bytes());
                tty_into(out, &chunk[0], &child_prefix)?;
                if let Some(value) = chunk.get(1) {
                    out.pop(); // the key's newline
                    out.extend_from_slice(b" => ");
                    // A value that takes several lines starts on its own line, aligned.
                    if is_multiline(value) {
                        out.push(b'\n');
                        out.extend_from_slice(child_prefix.as_bytes());
                    }
                    tty_into(out, value, &child_prefix)?;
                }
            }
        }
    }
    Ok(())
}

/// Whether the human format spreads `r` over several lines (`cliIsMultilineValueTTY`).
fn is_multiline(r: &Reply) -> bool {
    match r {
        Reply::Array(v) | Reply::Set(v) | Reply::Push(v) => {
            v.len() > 1 || v.first().is_some_and(is_multiline)
        }
        Reply::Map(v) => v.len() > 2 || v.get(1).is_some_and(is_multiline),
        _ => false,
    }
}

/// Raw format (`cliFormatReplyRaw`): bare values, aggregate items joined by `delim`.
pub fn raw(r: &Reply, delim: &[u8]) -> Result<Vec<u8>, UnknownType> {
    let mut out = Vec::new();
    raw_into(&mut out, r, delim)?;
    Ok(out)
}

fn raw_into(out: &mut Vec<u8>, r: &Reply, delim: &[u8]) -> Result<(), UnknownType> {
    match r {
        Reply::Nil => {}
        Reply::Error(e) => {
            out.extend_from_slice(e);
            out.push(b'\n');
        }
        Reply::Status(s) | Reply::Bulk(s) | Reply::Verbatim(s) | Reply::Double(s) => {
            out.extend_from_slice(s)
        }
        Reply::Bool(b) => out.extend_from_slice(if *b { b"(true)" } else { b"(false)" }),
        Reply::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Reply::BigNumber(_) => return Err(UnknownType(REDIS_REPLY_BIGNUM)),
        Reply::Array(items) | Reply::Set(items) | Reply::Push(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delim);
                }
                raw_into(out, item, delim)?;
            }
        }
        Reply::Map(items) => {
            for (i, pair) in items.chunks(2).enumerate() {
                if i > 0 {
                    out.extend_from_slice(delim);
                }
                raw_into(out, &pair[0], delim)?;
                out.push(b' ');
                if let Some(v) = pair.get(1) {
                    raw_into(out, v, delim)?;
                }
            }
        }
    }
    Ok(())
}

/// Commands whose reply redis-cli always prints raw (their text is already laid out for people).
pub fn prints_verbatim<A: AsRef<[u8]>>(args: &[A]) -> bool {
    let arg = |i: usize| {
        args.get(i)
            .map(|a| a.as_ref().to_ascii_lowercase())
            .unwrap_or_default()
    };
    let (cmd, sub) = (arg(0), arg(1));
    let argc = args.len();
    match cmd.as_slice() {
        b"info" | b"lolwut" => true,
        b"debug" => argc >= 2 && sub == b"htstats",
        b"memory" => argc >= 2 && (sub == b"malloc-stats" || sub == b"doctor"),
        b"cluster" => argc == 2 && (sub == b"nodes" || sub == b"info"),
        b"client" => argc >= 2 && (sub == b"list" || sub == b"info"),
        b"latency" => (argc == 3 && sub == b"graph") || (argc == 2 && sub == b"doctor"),
        b"proxy" => argc >= 2 && sub == b"info",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Reply {
        Reply::Bulk(s.to_vec())
    }
    fn st(s: &str) -> Reply {
        Reply::Status(s.as_bytes().to_vec())
    }
    fn t(r: &Reply) -> String {
        String::from_utf8(tty(r).unwrap()).unwrap()
    }
    fn rw(r: &Reply) -> String {
        String::from_utf8(raw(r, b"\n").unwrap()).unwrap()
    }

    #[test]
    fn repr_escapes_like_sdscatrepr() {
        // redis-cli --no-raw get bin, value printf 'a\x01\tb\n\\c\xff'
        assert_eq!(
            repr(b"a\x01\tb\n\\c\xff"),
            br#""a\x01\tb\n\\c\xff""#.to_vec()
        );
        assert_eq!(repr(b"a\"b"), br#""a\"b""#.to_vec());
        assert_eq!(repr(b"\r\x07\x08\x7f "), br#""\r\a\b\x7f ""#.to_vec());
        assert_eq!(repr(b""), b"\"\"".to_vec());
    }

    #[test]
    fn tty_scalars() {
        assert_eq!(t(&st("OK")), "OK\n");
        assert_eq!(t(&Reply::Integer(1)), "(integer) 1\n");
        assert_eq!(t(&Reply::Nil), "(nil)\n");
        assert_eq!(
            t(&Reply::Error(
                b"READONLY You can't write against a read only replica.".to_vec()
            )),
            "(error) READONLY You can't write against a read only replica.\n"
        );
        assert_eq!(t(&bulk(b"1.5")), "\"1.5\"\n");
        assert_eq!(t(&Reply::Double(b"1.5".to_vec())), "(double) 1.5\n");
        assert_eq!(t(&Reply::Bool(true)), "(true)\n");
        assert_eq!(t(&Reply::Bool(false)), "(false)\n");
        assert_eq!(
            t(&Reply::Verbatim(b"This is a verbatim\nstring".to_vec())),
            "This is a verbatim\nstring\n"
        );
        assert_eq!(tty(&Reply::BigNumber(b"1".to_vec())), Err(UnknownType(13)));
    }

    #[test]
    fn tty_empty_aggregates() {
        assert_eq!(t(&Reply::Array(vec![])), "(empty array)\n");
        assert_eq!(t(&Reply::Map(vec![])), "(empty hash)\n");
        assert_eq!(t(&Reply::Set(vec![])), "(empty set)\n");
        assert_eq!(t(&Reply::Push(vec![])), "(empty push)\n");
    }

    #[test]
    fn tty_nested_arrays_align_indexes() {
        // redis-cli --no-raw command docs get (RESP2), truncated to one argument field.
        let mut doc: Vec<Reply> = [
            "summary",
            "Get the value of a key",
            "since",
            "1.0.0",
            "group",
            "string",
            "complexity",
            "O(1)",
            "arguments",
        ]
        .iter()
        .map(|s| bulk(s.as_bytes()))
        .collect();
        doc.push(Reply::Array(vec![Reply::Array(vec![
            bulk(b"name"),
            bulk(b"key"),
            bulk(b"type"),
            bulk(b"key"),
            bulk(b"key_spec_index"),
            Reply::Integer(0),
        ])]));
        let r = Reply::Array(vec![bulk(b"get"), Reply::Array(doc)]);
        let want = concat!(
            "1) \"get\"\n",
            "2)  1) \"summary\"\n",
            "    2) \"Get the value of a key\"\n",
            "    3) \"since\"\n",
            "    4) \"1.0.0\"\n",
            "    5) \"group\"\n",
            "    6) \"string\"\n",
            "    7) \"complexity\"\n",
            "    8) \"O(1)\"\n",
            "    9) \"arguments\"\n",
            "   10) 1) 1) \"name\"\n",
            "          2) \"key\"\n",
            "          3) \"type\"\n",
            "          4) \"key\"\n",
            "          5) \"key_spec_index\"\n",
            "          6) (integer) 0\n",
        );
        assert_eq!(t(&r), want);
    }

    #[test]
    fn tty_resp3_maps_and_sets() {
        // redis-cli -3 --no-raw hgetall h / smembers s / debug protocol map
        let m = Reply::Map(vec![bulk(b"f1"), bulk(b"v1"), bulk(b"f2"), bulk(b"a\"b")]);
        assert_eq!(t(&m), "1# \"f1\" => \"v1\"\n2# \"f2\" => \"a\\\"b\"\n");
        let s = Reply::Set(vec![bulk(b"m1"), bulk(b"m2")]);
        assert_eq!(t(&s), "1~ \"m1\"\n2~ \"m2\"\n");
        let m = Reply::Map(vec![
            Reply::Integer(0),
            Reply::Bool(false),
            Reply::Integer(1),
            Reply::Bool(true),
        ]);
        assert_eq!(
            t(&m),
            "1# (integer) 0 => (false)\n2# (integer) 1 => (true)\n"
        );
        // hello 3: an empty aggregate value stays on the key's line.
        let m = Reply::Map(vec![
            bulk(b"proto"),
            Reply::Integer(3),
            bulk(b"modules"),
            Reply::Array(vec![]),
        ]);
        assert_eq!(
            t(&m),
            "1# \"proto\" => (integer) 3\n2# \"modules\" => (empty array)\n"
        );
    }

    #[test]
    fn tty_resp3_nested_map_value_starts_on_next_line() {
        // redis-cli -3 --no-raw command docs get (first fields)
        let args = Reply::Array(vec![Reply::Map(vec![
            bulk(b"name"),
            bulk(b"key"),
            bulk(b"key_spec_index"),
            Reply::Integer(0),
        ])]);
        let doc = Reply::Map(vec![
            bulk(b"summary"),
            bulk(b"Get the value of a key"),
            bulk(b"arguments"),
            args,
        ]);
        let r = Reply::Map(vec![bulk(b"get"), doc]);
        let want = concat!(
            "1# \"get\" => \n",
            "   1# \"summary\" => \"Get the value of a key\"\n",
            "   2# \"arguments\" => \n",
            "      1) 1# \"name\" => \"key\"\n",
            "         2# \"key_spec_index\" => (integer) 0\n",
        );
        assert_eq!(t(&r), want);
        // redis-cli -3 --no-raw zrange z 0 -1 withscores
        let z = Reply::Array(vec![
            Reply::Array(vec![bulk(b"a"), Reply::Double(b"1.5".to_vec())]),
            Reply::Array(vec![bulk(b"b"), Reply::Double(b"2".to_vec())]),
        ]);
        assert_eq!(
            t(&z),
            "1) 1) \"a\"\n   2) (double) 1.5\n2) 1) \"b\"\n   2) (double) 2\n"
        );
    }

    #[test]
    fn raw_format() {
        assert_eq!(rw(&st("OK")), "OK");
        assert_eq!(rw(&Reply::Nil), "");
        assert_eq!(rw(&Reply::Integer(-3)), "-3");
        assert_eq!(rw(&Reply::Error(b"ERR x".to_vec())), "ERR x\n");
        assert_eq!(rw(&bulk(b"a\tb\n")), "a\tb\n");
        assert_eq!(rw(&Reply::Double(b"3.141".to_vec())), "3.141");
        assert_eq!(rw(&Reply::Bool(true)), "(true)");
        assert_eq!(rw(&Reply::Array(vec![])), "");
        assert_eq!(
            rw(&Reply::Array(vec![
                bulk(b"a"),
                Reply::Nil,
                Reply::Integer(2)
            ])),
            "a\n\n2"
        );
        assert_eq!(
            rw(&Reply::Set(vec![Reply::Integer(0), Reply::Integer(1)])),
            "0\n1"
        );
        // redis-cli -3 debug protocol map
        let m = Reply::Map(vec![
            Reply::Integer(0),
            Reply::Bool(false),
            Reply::Integer(1),
            Reply::Bool(true),
        ]);
        assert_eq!(rw(&m), "0 (false)\n1 (true)");
        // redis-cli -3 command docs get: nested maps join with the same delimiter.
        let args = Reply::Array(vec![Reply::Map(vec![
            bulk(b"name"),
            bulk(b"key"),
            bulk(b"type"),
            bulk(b"key"),
        ])]);
        let m = Reply::Map(vec![
            bulk(b"get"),
            Reply::Map(vec![
                bulk(b"since"),
                bulk(b"1.0.0"),
                bulk(b"arguments"),
                args,
            ]),
        ]);
        assert_eq!(rw(&m), "get since 1.0.0\narguments name key\ntype key");
        assert_eq!(
            String::from_utf8(raw(&Reply::Array(vec![bulk(b"a"), bulk(b"b")]), b",").unwrap())
                .unwrap(),
            "a,b"
        );
    }

    #[test]
    fn verbatim_commands() {
        assert!(prints_verbatim(&["INFO"]));
        assert!(prints_verbatim(&["info", "replication"]));
        assert!(prints_verbatim(&["client", "LIST"]));
        assert!(!prints_verbatim(&["client", "id"]));
        assert!(!prints_verbatim(&["cluster", "nodes", "x"]));
        assert!(!prints_verbatim(&["get", "info"]));
    }
}
