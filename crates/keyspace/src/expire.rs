//! Key expiry commands: EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT, TTL/PTTL,
//! EXPIRETIME/PEXPIRETIME, PERSIST. Lazy expiry lives in the lookups
//! ([`crate::db`]) and the active cycle in [`Keyspace::active_expire`].

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_commands::{Command, CommandId};
use shardis_protocol::Reply;

/// EXPIRE/PEXPIRE/EXPIREAT/PEXPIREAT key time [NX|XX|GT|LT]; propagated as
/// `PEXPIREAT key <abs ms> [flags]`, or `DEL key` when the time is past.
pub fn expire(ks: &mut Keyspace, ctx: &mut ExecContext, cmd: &Command, args: &[Bytes]) -> Reply {
    let (secs, relative) = match cmd.id {
        CommandId::Expire => (true, true),
        CommandId::Pexpire => (false, true),
        CommandId::Expireat => (true, false),
        _ => (false, false),
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        match a.to_ascii_lowercase().as_slice() {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            _ => return Reply::Error(errors::unsupported_option(a)),
        }
    }
    if nx && (xx || gt || lt) {
        return err(errors::EXPIRE_NX_AND_OTHER);
    }
    if gt && lt {
        return err(errors::EXPIRE_GT_AND_LT);
    }
    let mut when = match parse_i64(&args[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if secs {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            return Reply::Error(errors::invalid_expire(cmd.name));
        }
        when *= 1000;
    }
    if relative {
        let base = ctx.now_ms as i64;
        if when > i64::MAX - base {
            return Reply::Error(errors::invalid_expire(cmd.name));
        }
        when += base;
    }
    let db = ctx.db;
    let key = &args[1];
    let Some(e) = ks.find_entry(ctx, db, key, Lookup::Write) else {
        return Reply::Integer(0);
    };
    let current = e.slot().expire_at().map(|t| t as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        return Reply::Integer(0);
    }
    ctx.stats.dirty += 1;
    // Replicas keep even past times and wait for their master's DEL.
    if when <= ctx.now_ms as i64 && !ctx.replica {
        e.remove();
        ctx.notify(crate::notify::GENERIC, "del", key);
        ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()]);
        return Reply::Integer(1);
    }
    // A negative time can only reach here on a replica: it is in the past.
    e.into_found().set_expire(Some(when.max(1) as u64));
    ctx.notify(crate::notify::GENERIC, "expire", key);
    let mut effect = Vec::with_capacity(args.len());
    effect.push(Bytes::from_static(b"PEXPIREAT"));
    effect.push(key.clone());
    effect.push(if cmd.id == CommandId::Pexpireat {
        args[2].clone()
    } else {
        Bytes::from(when.to_string())
    });
    effect.extend_from_slice(&args[3..]);
    ctx.propagate(effect);
    Reply::Integer(1)
}

/// TTL/PTTL/EXPIRETIME/PEXPIRETIME key: -2 missing, -1 no expiry.
pub fn ttl(ks: &mut Keyspace, ctx: &mut ExecContext, cmd: &Command, args: &[Bytes]) -> Reply {
    let (ms, absolute) = match cmd.id {
        CommandId::Ttl => (false, false),
        CommandId::Pttl => (true, false),
        CommandId::Expiretime => (false, true),
        _ => (true, true),
    };
    let db = ctx.db;
    let now = ctx.now_ms as i64;
    let Some(f) = ks.find(ctx, db, &args[1], Lookup::ReadNoTouch) else {
        return Reply::Integer(-2);
    };
    let Some(at) = f.slot.expire_at() else {
        return Reply::Integer(-1);
    };
    let t = if absolute {
        at as i64
    } else {
        (at as i64 - now).max(0)
    };
    Reply::Integer(if ms { t } else { (t + 500) / 1000 })
}

/// PERSIST key
pub fn persist(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let db = ctx.db;
    let Some(mut f) = ks.find(ctx, db, &args[1], Lookup::Write) else {
        return Reply::Integer(0);
    };
    if f.slot.expire_at().is_none() {
        return Reply::Integer(0);
    }
    f.set_expire(None);
    ctx.stats.dirty += 1;
    ctx.notify(crate::notify::GENERIC, "persist", &args[1]);
    ctx.propagate_as_sent(args);
    Reply::Integer(1)
}

#[cfg(test)]
mod tests {
    use crate::testutil::*;
    use crate::DbIndex;

    #[test]
    fn expire_family_and_effects() {
        let mut t = T::new();
        let now = t.ctx.now_ms;
        t.run("SET k v");
        t.effects();
        assert_eq!(t.run("EXPIRE nope 10"), int(0));
        assert_eq!(t.run("EXPIRE k 10"), int(1));
        assert_eq!(t.run("PEXPIRE k 20000 GT"), int(1));
        assert_eq!(t.run(&format!("EXPIREAT k {}", now / 1000 + 30)), int(1));
        assert_eq!(t.run(&format!("PEXPIREAT k {}", now + 40_000)), int(1));
        assert_eq!(
            t.effects(),
            vec![
                format!("PEXPIREAT k {}", now + 10_000),
                format!("PEXPIREAT k {} GT", now + 20_000),
                format!("PEXPIREAT k {}", now + 30_000),
                format!("PEXPIREAT k {}", now + 40_000),
            ]
        );
        assert_eq!(t.run("TTL k"), int(40));
        assert_eq!(t.run("PTTL k"), int(40_000));
        assert_eq!(t.run("EXPIRETIME k"), int((now + 40_000) as i64 / 1000));
        assert_eq!(t.run("PEXPIRETIME k"), int((now + 40_000) as i64));
        assert_eq!(t.run("EXPIRE k -1"), int(1));
        assert_eq!(t.effects(), vec!["DEL k"]);
        assert_eq!(t.run("TTL k"), int(-2));
    }

    #[test]
    fn conditional_flags() {
        let mut t = T::new();
        t.run("SET k v");
        assert_eq!(t.run("EXPIRE k 10 XX"), int(0));
        assert_eq!(t.run("EXPIRE k 10 GT"), int(0), "no TTL counts as infinite");
        assert_eq!(t.run("EXPIRE k 10 LT"), int(1));
        assert_eq!(t.run("EXPIRE k 20 NX"), int(0));
        assert_eq!(t.run("EXPIRE k 5 GT"), int(0));
        assert_eq!(t.run("EXPIRE k 20 GT"), int(1));
        assert_eq!(t.run("EXPIRE k 30 LT"), int(0));
        assert_eq!(t.run("EXPIRE k 15 lt"), int(1));
        assert_eq!(t.run("EXPIRE k 15 XX"), int(1));
        assert_eq!(
            t.run("EXPIRE k 10 NX XX"),
            err("ERR NX and XX, GT or LT options at the same time are not compatible")
        );
        assert_eq!(
            t.run("EXPIRE k 10 GT LT"),
            err("ERR GT and LT options at the same time are not compatible")
        );
        assert_eq!(t.run("EXPIRE k 10 foo"), err("ERR Unsupported option foo"));
        assert_eq!(
            t.run("EXPIRE k abc"),
            err("ERR value is not an integer or out of range")
        );
        for (cmd, arg) in [
            ("expire", "9223372036854775807"),
            ("expire", "-9223372036854775807"),
            ("pexpire", "9223372036854775807"),
            ("expireat", "9223372036854775807"),
        ] {
            assert_eq!(
                t.run(&format!("{cmd} k {arg}")),
                err(&format!("ERR invalid expire time in '{cmd}' command"))
            );
        }
    }

    #[test]
    fn ttl_rounding_and_persist() {
        let mut t = T::new();
        t.run("PSETEX k 1499 v");
        assert_eq!(t.run("TTL k"), int(1));
        t.run("PSETEX k 1500 v");
        assert_eq!(t.run("TTL k"), int(2));
        t.run("SET p v");
        assert_eq!(t.run("TTL p"), int(-1));
        assert_eq!(t.run("PERSIST p"), int(0));
        assert_eq!(t.run("PERSIST nope"), int(0));
        t.effects();
        assert_eq!(t.run("PERSIST k"), int(1));
        assert_eq!(t.effects(), vec!["PERSIST k"]);
        assert_eq!(t.run("TTL k"), int(-1));
        assert_eq!(t.ks.keyspace_info()[0], (2, 0, 0));
    }

    #[test]
    fn replica_keeps_past_expiries_and_obeys_master_writes() {
        let mut t = T::new();
        t.ctx.replica = true;
        t.run("SET k v");
        assert_eq!(
            t.run("PEXPIREAT k 1"),
            int(1),
            "a replica stores even a past time"
        );
        assert_eq!(t.ks.dbsize(DbIndex(0)), 1);
        assert_eq!(t.run("GET k"), Reply::Nil, "but reads hide the key");
        assert_eq!(t.run("TTL k"), int(-2));
        // The master's writes still see the key (Redis's expireIfNeeded).
        assert_eq!(t.run("APPEND k x"), int(2));
        assert_eq!(t.run("DEL k"), int(1));
        assert_eq!(t.ks.dbsize(DbIndex(0)), 0);
        assert!(t.ctx.stats.expired_keys == 0);
    }

    use shardis_protocol::Reply;
}
