//! Arbitrary bytes decoded into requests (RESP or inline) and run one after the
//! other on one keyspace, as a shard would: unknown commands and wrong arities
//! are rejected first, like the server does; the db-level commands the server
//! runs itself (SELECT, FLUSHDB, SWAPDB, KEYS, SCAN…) go to the Keyspace methods
//! it calls. Nothing may panic, and every reply must encode in RESP2 and RESP3.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use shardis_keyspace::{DbIndex, ExecContext, Keyspace};
use shardis_protocol::{DecodeLimits, Protocol, RequestDecoder};

/// Commands per input: enough for interesting sequences, bounded for speed.
const MAX_COMMANDS: usize = 64;
/// Biggest offset or count accepted by the commands that allocate that much
/// (SETRANGE 500000000 x, SRANDMEMBER s -500000000, SETBIT k 4000000000 1,
/// BITFIELD k SET i64 #60000000 1): above it a run only allocates, without
/// reaching new code.
const MAX_NUMBER: i64 = 1 << 20;
const ALLOCATE_BY_ARGUMENT: [&str; 6] = [
    "setrange",
    "srandmember",
    "hrandfield",
    "zrandmember",
    "setbit",
    "bitfield",
];

fn too_big(name: &str, args: &[Bytes]) -> bool {
    ALLOCATE_BY_ARGUMENT.contains(&name)
        && args.iter().skip(1).any(|a| {
            std::str::from_utf8(a)
                .ok()
                .and_then(|s| s.trim().trim_start_matches('#').parse::<f64>().ok())
                .is_some_and(|n| n.abs() > MAX_NUMBER as f64)
        })
}

fn num(a: &[u8]) -> Option<usize> {
    std::str::from_utf8(a).ok()?.parse().ok()
}

fuzz_target!(|data: &[u8]| {
    let mut ks = Keyspace::new(16);
    let mut ctx = ExecContext {
        now_ms: 1_700_000_000_000,
        ..Default::default()
    };
    let mut decoder = RequestDecoder::new(true);
    let limits = DecodeLimits::default();
    let mut buf = BytesMut::from(data);
    let mut out = BytesMut::new();
    for _ in 0..MAX_COMMANDS {
        let Ok(Some(args)) = decoder.decode(&mut buf, &limits) else {
            break;
        };
        // Time moves a little per command, so TTLs in ms expire mid-run.
        ctx.now_ms += 7;
        let Some(cmd) = shardis_commands::lookup(&args[0]) else {
            continue;
        };
        if !cmd.arity_ok(args.len()) || too_big(cmd.name, &args) {
            continue;
        }
        let name = cmd.name.as_bytes();
        let reply = match name {
            b"select" => {
                if let Some(db) = num(&args[1]).filter(|&d| d < ks.databases()) {
                    ctx.db = DbIndex(db);
                }
                continue;
            }
            b"flushdb" => {
                ks.flush_db(ctx.db);
                continue;
            }
            b"flushall" => {
                ks.flush_all();
                continue;
            }
            b"swapdb" => {
                if let (Some(a), Some(b)) = (num(&args[1]), num(&args[2])) {
                    if a < ks.databases() && b < ks.databases() {
                        ks.swap_db(DbIndex(a), DbIndex(b));
                    }
                }
                continue;
            }
            b"dbsize" => {
                let _ = ks.dbsize(ctx.db);
                continue;
            }
            b"keys" => {
                let _ = ks.keys(&mut ctx, &args[1]);
                continue;
            }
            b"randomkey" => {
                let _ = ks.random_key(&mut ctx);
                continue;
            }
            b"scan" => {
                if let Some(cursor) = num(&args[1]) {
                    let pattern = args.get(2).map(|p| &p[..]);
                    let _ = ks.scan(&mut ctx, cursor as u64, 10, pattern, None);
                }
                continue;
            }
            _ => ks.execute(&mut ctx, cmd, &args),
        };
        out.clear();
        reply.encode(Protocol::Resp2, &mut out);
        reply.encode(Protocol::Resp3, &mut out);
        ctx.effects.clear();
        ctx.ready_keys.clear();
        if ctx.now_ms % 5 == 0 {
            ks.active_expire(&mut ctx, 20);
        }
    }
    // The digest walks every value of every type that was built.
    let _ = ks.digest();
});
