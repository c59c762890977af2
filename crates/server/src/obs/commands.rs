//! The SLOWLOG, LATENCY and MONITOR commands.

use super::latency::{self, Series};
use crate::conn::Conn;
use crate::errors;
use bytes::Bytes;
use shardis_protocol::Reply;
use std::sync::atomic::Ordering;

/// Redis's addReplyHelp: the header, `lines`, then HELP's own entry.
pub(crate) fn help(lines: &[&str], container: &str) -> Reply {
    let mut v = vec![Reply::Status(format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ))];
    v.extend(lines.iter().map(|l| Reply::Status(l.to_string())));
    v.push(Reply::Status("HELP".into()));
    v.push(Reply::Status("    Prints this help.".into()));
    Reply::Array(v)
}

/// `ERR unknown subcommand or wrong number of arguments for 'x'. Try SLOWLOG HELP.`
fn syntax_error(sub: &[u8], container: &str) -> Reply {
    Reply::Error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {container} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ))
}

/// Checks a subcommand's arity against Redis 7.0's table; `None` when unknown.
fn sub_arity(
    args: &[Bytes],
    table: &[(&str, i32)],
    container: &str,
) -> Option<Result<String, Reply>> {
    let sub = args[1].to_ascii_lowercase();
    let (name, arity) = table.iter().find(|(n, _)| n.as_bytes() == sub.as_slice())?;
    let n = args.len() as i32;
    let ok = if *arity >= 0 {
        n == *arity
    } else {
        n >= -arity
    };
    Some(if ok {
        Ok(name.to_string())
    } else {
        Err(Reply::Error(errors::wrong_arity(&format!(
            "{container}|{name}"
        ))))
    })
}

/// SLOWLOG GET/LEN/RESET/HELP over every shard's ring.
pub async fn slowlog(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let table = [("get", -2), ("len", 2), ("reset", 2), ("help", 2)];
    let sub = match sub_arity(args, &table, "slowlog") {
        None => return Reply::Error(errors::unknown_subcommand(&args[1], "slowlog")),
        Some(Err(e)) => return e,
        Some(Ok(s)) => s,
    };
    match sub.as_str() {
        "help" => help(
            &[
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
            ],
            "SLOWLOG",
        ),
        "len" => match conn.shard.broadcast(|s| s.obs.borrow().slowlog.len()).await {
            Ok(v) => Reply::Integer(v.into_iter().sum::<usize>() as i64),
            Err(_) => Reply::error(errors::SHUTTING_DOWN),
        },
        "reset" => match conn
            .shard
            .broadcast(|s| s.obs.borrow_mut().slowlog.clear())
            .await
        {
            Ok(_) => Reply::OK,
            Err(_) => Reply::error(errors::SHUTTING_DOWN),
        },
        _ => {
            if args.len() > 3 {
                return syntax_error(&args[1], "SLOWLOG");
            }
            let count = match args.get(2) {
                None => 10,
                Some(a) => match std::str::from_utf8(a)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) if n >= -1 => n,
                    _ => return Reply::error("ERR count should be greater than or equal to -1"),
                },
            };
            let limit = if count < 0 {
                usize::MAX
            } else {
                count as usize
            };
            let per_shard = match conn
                .shard
                .broadcast(move |s| {
                    s.obs
                        .borrow()
                        .slowlog
                        .entries()
                        .take(limit)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .await
            {
                Ok(v) => v,
                Err(_) => return Reply::error(errors::SHUTTING_DOWN),
            };
            let mut all: Vec<_> = per_shard.into_iter().flatten().collect();
            all.sort_by_key(|e| std::cmp::Reverse(e.id));
            all.truncate(limit);
            Reply::Array(all.iter().map(|e| e.reply()).collect())
        }
    }
}

async fn events(conn: &Conn) -> Option<Vec<(&'static str, Series)>> {
    let per_shard = conn
        .shard
        .broadcast(|s| s.obs.borrow().latency.events.clone())
        .await
        .ok()?;
    Some(latency::merge_events(per_shard))
}

/// LATENCY LATEST/HISTORY/RESET/DOCTOR/HISTOGRAM/HELP.
pub async fn latency_cmd(conn: &mut Conn, args: &[Bytes]) -> Reply {
    let table = [
        ("latest", 2),
        ("history", 3),
        ("graph", 3),
        ("reset", -2),
        ("doctor", 2),
        ("histogram", -2),
        ("help", 2),
    ];
    let sub = match sub_arity(args, &table, "latency") {
        None => return Reply::Error(errors::unknown_subcommand(&args[1], "latency")),
        Some(Err(e)) => return e,
        Some(Ok(s)) => s,
    };
    match sub.as_str() {
        "help" => help(
            &[
                "DOCTOR",
                "    Return a human readable latency analysis report.",
                "GRAPH <event>",
                "    Return an ASCII latency graph for the <event> class.",
                "HISTORY <event>",
                "    Return time-latency samples for the <event> class.",
                "LATEST",
                "    Return the latest latency samples for all events.",
                "RESET [<event> ...]",
                "    Reset latency data of one or more <event> classes.",
                "    (default: reset all data for all event classes)",
                "HISTOGRAM [COMMAND ...]",
                "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
                "    If no commands are specified then all histograms are replied.",
            ],
            "LATENCY",
        ),
        "latest" => {
            let Some(ev) = events(conn).await else {
                return Reply::error(errors::SHUTTING_DOWN);
            };
            Reply::Array(
                ev.iter()
                    .filter_map(|(e, s)| {
                        let last = s.samples.back()?;
                        Some(Reply::Array(vec![
                            Reply::Bulk(Bytes::from_static(e.as_bytes())),
                            Reply::Integer(last.time as i64),
                            Reply::Integer(last.latency as i64),
                            Reply::Integer(s.max as i64),
                        ]))
                    })
                    .collect(),
            )
        }
        "history" => {
            let Some(ev) = events(conn).await else {
                return Reply::error(errors::SHUTTING_DOWN);
            };
            let name = &args[2];
            Reply::Array(
                ev.iter()
                    .find(|(e, _)| e.as_bytes() == name.as_ref())
                    .map(|(_, s)| {
                        s.samples
                            .iter()
                            .map(|x| {
                                Reply::Array(vec![
                                    Reply::Integer(x.time as i64),
                                    Reply::Integer(x.latency as i64),
                                ])
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        }
        "graph" => {
            let Some(ev) = events(conn).await else {
                return Reply::error(errors::SHUTTING_DOWN);
            };
            match ev.iter().find(|(e, _)| e.as_bytes() == args[2].as_ref()) {
                Some((e, s)) => Reply::Verbatim(
                    "txt",
                    Bytes::from(latency::graph(e, s, crate::shared::unix_ms() / 1000)),
                ),
                None => Reply::Error(format!(
                    "ERR No samples available for event '{}'",
                    String::from_utf8_lossy(&args[2])
                )),
            }
        }
        "reset" => {
            let names: Option<Vec<String>> = (args.len() > 2).then(|| {
                args[2..]
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            });
            let per_shard = conn
                .shard
                .broadcast(move |s| s.obs.borrow_mut().latency.reset_events(names.as_deref()))
                .await
                .unwrap_or_default();
            let mut gone: Vec<&str> = per_shard.into_iter().flatten().collect();
            gone.sort_unstable();
            gone.dedup();
            Reply::Integer(gone.len() as i64)
        }
        "doctor" => {
            let Some(ev) = events(conn).await else {
                return Reply::error(errors::SHUTTING_DOWN);
            };
            let threshold = conn.shard.shared.obs.latency_threshold_ms.load(Ordering::Relaxed);
            Reply::Verbatim("txt", Bytes::from(doctor(&ev, threshold)))
        }
        _ => histogram(conn, args).await,
    }
}

/// LATENCY DOCTOR: Redis's opening lines and one summary line per event
/// (Redis's per-event advice paragraphs are not reproduced).
fn doctor(ev: &[(&'static str, Series)], threshold: u64) -> String {
    if ev.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    if ev.is_empty() {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n".into();
    }
    let mut out = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    for (i, (e, s)) in ev.iter().enumerate() {
        let n = s.samples.len().max(1) as u64;
        let avg = s.samples.iter().map(|x| x.latency).sum::<u64>() / n;
        let mad = s
            .samples
            .iter()
            .map(|x| x.latency.abs_diff(avg))
            .sum::<u64>()
            / n;
        let period = match (s.samples.front(), s.samples.back()) {
            (Some(a), Some(b)) => (b.time - a.time) as f64 / n as f64,
            _ => 0.0,
        };
        out.push_str(&format!(
            "{}. {e}: {} latency spikes (average {avg}ms, mean deviation {mad}ms, period {period:.2} sec). Worst all time event {}ms.\n",
            i + 1,
            s.samples.len(),
            s.max
        ));
    }
    out
}

/// LATENCY HISTOGRAM [command ...]: per-command cumulative distributions.
async fn histogram(conn: &Conn, args: &[Bytes]) -> Reply {
    let per_shard = conn
        .shard
        .broadcast(|s| s.obs.borrow().latency.histograms())
        .await
        .unwrap_or_default();
    let merged = latency::merge_histograms(per_shard);
    let wanted: Option<Vec<usize>> = (args.len() > 2).then(|| {
        args[2..]
            .iter()
            .filter_map(|a| shardis_commands::lookup_full(a))
            .collect()
    });
    let mut out = Vec::new();
    for (id, h) in &merged {
        if wanted.as_ref().is_some_and(|w| !w.contains(id)) {
            continue;
        }
        let name = shardis_commands::meta::TABLE[*id].name;
        let buckets = latency::cdf(h)
            .into_iter()
            .map(|(us, n)| (Reply::Integer(us as i64), Reply::Integer(n as i64)))
            .collect();
        out.push((
            Reply::Bulk(Bytes::from_static(name.as_bytes())),
            Reply::Map(vec![
                (
                    Reply::Bulk(Bytes::from_static(b"calls")),
                    Reply::Integer(h.len() as i64),
                ),
                (
                    Reply::Bulk(Bytes::from_static(b"histogram_usec")),
                    Reply::Map(buckets),
                ),
            ]),
        ));
    }
    Reply::Map(out)
}

/// MONITOR: this connection receives every executed command from now on.
pub fn monitor(conn: &mut Conn) -> Reply {
    if conn.tx.in_multi() {
        return Reply::error("ERR MONITOR isn't allowed in MULTI");
    }
    let id = conn.info.borrow().id;
    if super::monitor::add(&conn.shard, id, conn.subs.mailbox.clone()) {
        conn.info.borrow_mut().flags = "O".into();
    }
    Reply::OK
}
