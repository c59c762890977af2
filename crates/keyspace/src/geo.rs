//! The GEO commands: points kept in a sorted set whose scores are 52-bit
//! interleaved geohashes, exactly as Redis 7.0 encodes them (so a GEO key is
//! interchangeable with Redis's through RDB, DUMP and replication).
//!
//! The search (GEORADIUS*, GEOSEARCH*) is Redis's: estimate a geohash
//! precision from the radius, take the centre cell and its eight neighbours
//! (dropping the ones the search area cannot reach), scan each cell's score
//! range in the sorted set, and keep the points whose haversine distance (or
//! box test) passes. Every floating-point step follows Redis's order of
//! operations, so distances and coordinates print identically.
//!
//! GEOADD is Redis's: the pairs are turned into scores and the command runs
//! as (and propagates as) `ZADD`.

use crate::db::Lookup;
use crate::errors::{self, err};
use crate::value::Value;
use crate::zset::{self, ZSetValue};
use crate::{parse_i64, ExecContext, Keyspace};
use bytes::Bytes;
use shardis_protocol::Reply;

/// 26 steps per axis: 52 bits, what a double holds exactly.
const STEP_MAX: u8 = 26;
const LAT_MIN: f64 = -85.05112878;
const LAT_MAX: f64 = 85.05112878;
const LONG_MIN: f64 = -180.0;
const LONG_MAX: f64 = 180.0;
/// Redis's `D_R`: degrees to radians.
const D_R: f64 = std::f64::consts::PI / 180.0;
/// Earth's quadratic mean radius for WGS-84, as Redis uses it.
const EARTH_RADIUS_IN_METERS: f64 = 6372797.560856;
const MERCATOR_MAX: f64 = 20037726.37;

// ---------------------------------------------------------------------------
// Geohash
// ---------------------------------------------------------------------------

/// A geohash of `step` bits per axis (latitude in the even bits).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct HashBits {
    bits: u64,
    step: u8,
}

impl HashBits {
    fn is_zero(&self) -> bool {
        self.bits == 0 && self.step == 0
    }
}

#[derive(Debug, Clone, Copy)]
struct CoordRange {
    min: f64,
    max: f64,
}

const WGS84_LONG: CoordRange = CoordRange {
    min: LONG_MIN,
    max: LONG_MAX,
};
const WGS84_LAT: CoordRange = CoordRange {
    min: LAT_MIN,
    max: LAT_MAX,
};

/// The cell a hash covers.
#[derive(Debug, Clone, Copy)]
struct Area {
    long: CoordRange,
    lat: CoordRange,
}

/// Spreads the bits of `x` over the even positions and `y` over the odd ones.
fn interleave64(xlo: u32, ylo: u32) -> u64 {
    const B: [u64; 5] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
    ];
    const S: [u32; 5] = [1, 2, 4, 8, 16];
    let (mut x, mut y) = (xlo as u64, ylo as u64);
    for i in (0..5).rev() {
        x = (x | (x << S[i])) & B[i];
        y = (y | (y << S[i])) & B[i];
    }
    x | (y << 1)
}

/// The inverse: even bits in the low word, odd bits in the high word.
fn deinterleave64(interleaved: u64) -> u64 {
    const B: [u64; 6] = [
        0x5555555555555555,
        0x3333333333333333,
        0x0F0F0F0F0F0F0F0F,
        0x00FF00FF00FF00FF,
        0x0000FFFF0000FFFF,
        0x00000000FFFFFFFF,
    ];
    const S: [u32; 6] = [0, 1, 2, 4, 8, 16];
    let (mut x, mut y) = (interleaved, interleaved >> 1);
    for i in 0..6 {
        x = (x | (x >> S[i])) & B[i];
        y = (y | (y >> S[i])) & B[i];
    }
    x | (y << 32)
}

fn encode(
    long_range: CoordRange,
    lat_range: CoordRange,
    longitude: f64,
    latitude: f64,
    step: u8,
) -> Option<HashBits> {
    if step > 32 || step == 0 {
        return None;
    }
    // Never outside the Mercator limits, whatever the ranges.
    if !(LONG_MIN..=LONG_MAX).contains(&longitude) || !(LAT_MIN..=LAT_MAX).contains(&latitude) {
        return None;
    }
    if latitude < lat_range.min
        || latitude > lat_range.max
        || longitude < long_range.min
        || longitude > long_range.max
    {
        return None;
    }
    let mut lat_offset = (latitude - lat_range.min) / (lat_range.max - lat_range.min);
    let mut long_offset = (longitude - long_range.min) / (long_range.max - long_range.min);
    lat_offset *= (1u64 << step) as f64;
    long_offset *= (1u64 << step) as f64;
    Some(HashBits {
        bits: interleave64(lat_offset as u32, long_offset as u32),
        step,
    })
}

fn decode(long_range: CoordRange, lat_range: CoordRange, hash: HashBits) -> Option<Area> {
    if hash.is_zero() {
        return None;
    }
    let sep = deinterleave64(hash.bits);
    let lat_scale = lat_range.max - lat_range.min;
    let long_scale = long_range.max - long_range.min;
    let ilato = sep as u32;
    let ilono = (sep >> 32) as u32;
    let div = (1u64 << hash.step) as f64;
    Some(Area {
        lat: CoordRange {
            min: lat_range.min + (ilato as f64 / div) * lat_scale,
            max: lat_range.min + (ilato.wrapping_add(1) as f64 / div) * lat_scale,
        },
        long: CoordRange {
            min: long_range.min + (ilono as f64 / div) * long_scale,
            max: long_range.min + (ilono.wrapping_add(1) as f64 / div) * long_scale,
        },
    })
}

/// The centre of a cell, clamped to the valid ranges: `[longitude, latitude]`.
fn area_center(a: &Area) -> [f64; 2] {
    let lon = ((a.long.min + a.long.max) / 2.0).clamp(LONG_MIN, LONG_MAX);
    let lat = ((a.lat.min + a.lat.max) / 2.0).clamp(LAT_MIN, LAT_MAX);
    [lon, lat]
}

/// The stored score of a point (Redis's `geohashAlign52Bits` of a 26-step hash).
pub fn encode_score(longitude: f64, latitude: f64) -> Option<u64> {
    encode(WGS84_LONG, WGS84_LAT, longitude, latitude, STEP_MAX).map(align52)
}

/// The `[longitude, latitude]` a score stands for (the centre of its cell).
pub fn decode_score(score: f64) -> Option<[f64; 2]> {
    let hash = HashBits {
        bits: score as u64,
        step: STEP_MAX,
    };
    decode(WGS84_LONG, WGS84_LAT, hash).map(|a| area_center(&a))
}

fn align52(h: HashBits) -> u64 {
    h.bits << (52 - h.step as u32 * 2)
}

fn move_x(h: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let mut x = h.bits & 0xaaaaaaaaaaaaaaaa;
    let y = h.bits & 0x5555555555555555;
    let zz = 0x5555555555555555u64 >> (64 - h.step as u32 * 2);
    if d > 0 {
        x = x.wrapping_add(zz + 1);
    } else {
        x |= zz;
        x = x.wrapping_sub(zz + 1);
    }
    x &= 0xaaaaaaaaaaaaaaaau64 >> (64 - h.step as u32 * 2);
    h.bits = x | y;
}

fn move_y(h: &mut HashBits, d: i8) {
    if d == 0 {
        return;
    }
    let x = h.bits & 0xaaaaaaaaaaaaaaaa;
    let mut y = h.bits & 0x5555555555555555;
    let zz = 0xaaaaaaaaaaaaaaaau64 >> (64 - h.step as u32 * 2);
    if d > 0 {
        y = y.wrapping_add(zz + 1);
    } else {
        y |= zz;
        y = y.wrapping_sub(zz + 1);
    }
    y &= 0x5555555555555555u64 >> (64 - h.step as u32 * 2);
    h.bits = x | y;
}

/// The eight neighbours, in Redis's search order after the centre:
/// N, S, E, W, NE, NW, SE, SW.
fn neighbors(h: HashBits) -> [HashBits; 8] {
    let mv = |dx: i8, dy: i8| {
        let mut n = h;
        move_x(&mut n, dx);
        move_y(&mut n, dy);
        n
    };
    [
        mv(0, 1),
        mv(0, -1),
        mv(1, 0),
        mv(-1, 0),
        mv(1, 1),
        mv(-1, 1),
        mv(1, -1),
        mv(-1, -1),
    ]
}

// ---------------------------------------------------------------------------
// Distances and shapes
// ---------------------------------------------------------------------------

fn deg_rad(ang: f64) -> f64 {
    ang * D_R
}

fn rad_deg(ang: f64) -> f64 {
    ang / D_R
}

fn lat_distance(lat1d: f64, lat2d: f64) -> f64 {
    EARTH_RADIUS_IN_METERS * (deg_rad(lat2d) - deg_rad(lat1d)).abs()
}

/// Haversine great-circle distance in meters.
pub fn distance(lon1d: f64, lat1d: f64, lon2d: f64, lat2d: f64) -> f64 {
    let lon1r = deg_rad(lon1d);
    let lon2r = deg_rad(lon2d);
    let v = ((lon2r - lon1r) / 2.0).sin();
    // Same meridian: the latitude difference is the whole distance.
    if v == 0.0 {
        return lat_distance(lat1d, lat2d);
    }
    let lat1r = deg_rad(lat1d);
    let lat2r = deg_rad(lat2d);
    let u = ((lat2r - lat1r) / 2.0).sin();
    let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
    2.0 * EARTH_RADIUS_IN_METERS * a.sqrt().asin()
}

#[derive(Debug, Clone, Copy)]
enum ShapeKind {
    Circle { radius: f64 },
    Box { width: f64, height: f64 },
}

/// A search area around `xy` (`[longitude, latitude]`), sizes in the unit
/// whose size in meters is `conversion`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    kind: ShapeKind,
    conversion: f64,
    xy: [f64; 2],
}

impl Shape {
    /// `[min_lon, min_lat, max_lon, max_lat]` of the area.
    fn bounding_box(&self) -> [f64; 4] {
        let [longitude, latitude] = self.xy;
        let (h, w) = match self.kind {
            ShapeKind::Circle { radius } => (radius, radius),
            ShapeKind::Box { width, height } => (height / 2.0, width / 2.0),
        };
        let height = self.conversion * h;
        let width = self.conversion * w;
        let lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS);
        let long_delta_top =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude + lat_delta).cos());
        let long_delta_bottom =
            rad_deg(width / EARTH_RADIUS_IN_METERS / deg_rad(latitude - lat_delta).cos());
        // The hemispheres widen in opposite directions.
        let delta = if latitude < 0.0 {
            long_delta_bottom
        } else {
            long_delta_top
        };
        [
            longitude - delta,
            latitude - lat_delta,
            longitude + delta,
            latitude + lat_delta,
        ]
    }

    /// The distance from the centre to `xy` if `xy` is inside the area.
    fn contains(&self, xy: [f64; 2]) -> Option<f64> {
        let [x1, y1] = self.xy;
        let [x2, y2] = xy;
        match self.kind {
            ShapeKind::Circle { radius } => {
                let d = distance(x1, y1, x2, y2);
                (d <= radius * self.conversion).then_some(d)
            }
            ShapeKind::Box { width, height } => {
                let (width_m, height_m) = (width * self.conversion, height * self.conversion);
                if lat_distance(y2, y1) > height_m / 2.0 {
                    return None;
                }
                if distance(x2, y2, x1, y2) > width_m / 2.0 {
                    return None;
                }
                Some(distance(x1, y1, x2, y2))
            }
        }
    }
}

fn estimate_steps_by_radius(mut range_meters: f64, lat: f64) -> u8 {
    if range_meters == 0.0 {
        return 26;
    }
    let mut step: i32 = 1;
    while range_meters < MERCATOR_MAX {
        range_meters *= 2.0;
        step += 1;
    }
    step -= 2;
    // Cells narrow towards the poles: take larger ones.
    if !(-66.0..=66.0).contains(&lat) {
        step -= 1;
        if !(-80.0..=80.0).contains(&lat) {
            step -= 1;
        }
    }
    step.clamp(1, 26) as u8
}

/// The cells to scan: the centre, then N, S, E, W, NE, NW, SE, SW; cells the
/// area cannot reach are zero.
fn areas_for(shape: &Shape) -> [HashBits; 9] {
    let [min_lon, min_lat, max_lon, max_lat] = shape.bounding_box();
    let [longitude, latitude] = shape.xy;
    let radius_meters = match shape.kind {
        ShapeKind::Circle { radius } => radius,
        ShapeKind::Box { width, height } => {
            ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
        }
    } * shape.conversion;
    let mut steps = estimate_steps_by_radius(radius_meters, latitude);
    let cell = |steps| {
        let hash = encode(WGS84_LONG, WGS84_LAT, longitude, latitude, steps).unwrap_or_default();
        (hash, neighbors(hash))
    };
    let area_of = |h| {
        decode(WGS84_LONG, WGS84_LAT, h).unwrap_or(Area {
            long: CoordRange { min: 0.0, max: 0.0 },
            lat: CoordRange { min: 0.0, max: 0.0 },
        })
    };
    let (mut hash, mut nb) = cell(steps);
    // Near a cell's edge the estimated step can be too fine for the
    // neighbours to cover the area: go one step coarser.
    let (north, south, east, west) = (
        area_of(nb[0]),
        area_of(nb[1]),
        area_of(nb[2]),
        area_of(nb[3]),
    );
    let decrease = north.lat.max < max_lat
        || south.lat.min > min_lat
        || east.long.max < max_lon
        || west.long.min > min_lon;
    if steps > 1 && decrease {
        steps -= 1;
        (hash, nb) = cell(steps);
    }
    let area = area_of(hash);
    // Indices into `nb`: 0 N, 1 S, 2 E, 3 W, 4 NE, 5 NW, 6 SE, 7 SW.
    if steps >= 2 {
        let zero = HashBits::default();
        if area.lat.min < min_lat {
            for i in [1, 7, 6] {
                nb[i] = zero;
            }
        }
        if area.lat.max > max_lat {
            for i in [0, 4, 5] {
                nb[i] = zero;
            }
        }
        if area.long.min < min_lon {
            for i in [3, 7, 5] {
                nb[i] = zero;
            }
        }
        if area.long.max > max_lon {
            for i in [2, 6, 4] {
                nb[i] = zero;
            }
        }
    }
    [hash, nb[0], nb[1], nb[2], nb[3], nb[4], nb[5], nb[6], nb[7]]
}

/// One point found by a search.
#[derive(Debug, Clone)]
struct Point {
    xy: [f64; 2],
    dist: f64,
    score: f64,
    member: Bytes,
}

/// Every member of `z` inside `shape`, in scan order; stops once `limit`
/// (if non-zero) points were found.
fn search(z: &ZSetValue, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = areas_for(shape);
    let mut found = Vec::new();
    let mut last: Option<usize> = None;
    for (i, cell) in cells.iter().enumerate() {
        if cell.is_zero() {
            continue;
        }
        // Huge radii make neighbours coincide: scan a repeated cell once.
        if let Some(l) = last {
            if l != 0 && cells[l] == *cell {
                continue;
            }
        }
        if !found.is_empty() && limit > 0 && found.len() >= limit {
            break;
        }
        let min = align52(*cell) as f64;
        let max = align52(HashBits {
            bits: cell.bits + 1,
            step: cell.step,
        }) as f64;
        z.walk_score_range(min, max, |member, score| {
            if let Some(xy) = decode_score(score) {
                if let Some(dist) = shape.contains(xy) {
                    found.push(Point {
                        xy,
                        dist,
                        score,
                        member: Bytes::copy_from_slice(member),
                    });
                }
            }
            !(limit > 0 && found.len() >= limit)
        });
        last = Some(i);
    }
    found
}

// ---------------------------------------------------------------------------
// Formatting and argument parsing
// ---------------------------------------------------------------------------

/// Redis's `fixedpoint_d2string(…, 4)`: distances with four decimals.
pub fn format_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".to_owned();
    }
    let v = (d * 10000.0).round_ties_even();
    let neg = v < 0.0;
    let v = v.abs() as u64;
    format!(
        "{}{}.{:04}",
        if neg { "-" } else { "" },
        v / 10000,
        v % 10000
    )
}

/// `%.17Lf` with trailing zeros (and a bare dot) removed: Redis's
/// `addReplyHumanLongDouble` text for coordinates.
pub fn format_human(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let mut s = format!("{v:.17}");
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.').len();
        s.truncate(t);
    }
    if s == "-0" {
        s = "0".to_owned();
    }
    s
}

/// A coordinate reply: a bulk string in RESP2, a RESP3 double in human form.
fn coord_reply(ctx: &ExecContext, v: f64) -> Reply {
    let s = format_human(v);
    if ctx.resp3 {
        Reply::Raw(Bytes::from(format!(",{s}\r\n")))
    } else {
        Reply::Bulk(Bytes::from(s))
    }
}

fn parse_double(b: &[u8], msg: &str) -> Result<f64, Reply> {
    zset::parse_score(b).ok_or_else(|| err(msg))
}

/// Longitude and latitude from two arguments (`extractLongLatOrReply`).
fn parse_lonlat(args: &[Bytes]) -> Result<[f64; 2], Reply> {
    let lon = parse_double(&args[0], errors::NOT_FLOAT)?;
    let lat = parse_double(&args[1], errors::NOT_FLOAT)?;
    if !(LONG_MIN..=LONG_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
        return Err(Reply::Error(format!(
            "ERR invalid longitude,latitude pair {lon:.6},{lat:.6}"
        )));
    }
    Ok([lon, lat])
}

/// A unit's size in meters.
fn parse_unit(u: &[u8]) -> Result<f64, Reply> {
    if u.eq_ignore_ascii_case(b"m") {
        Ok(1.0)
    } else if u.eq_ignore_ascii_case(b"km") {
        Ok(1000.0)
    } else if u.eq_ignore_ascii_case(b"ft") {
        Ok(0.3048)
    } else if u.eq_ignore_ascii_case(b"mi") {
        Ok(1609.34)
    } else {
        Err(err(
            "ERR unsupported unit provided. please use M, KM, FT, MI",
        ))
    }
}

/// `radius unit` → (radius, conversion).
fn parse_distance(args: &[Bytes]) -> Result<(f64, f64), Reply> {
    let r = parse_double(&args[0], "ERR need numeric radius")?;
    if r < 0.0 {
        return Err(err("ERR radius cannot be negative"));
    }
    Ok((r, parse_unit(&args[1])?))
}

/// `width height unit` → (width, height, conversion).
fn parse_box(args: &[Bytes]) -> Result<(f64, f64, f64), Reply> {
    let w = parse_double(&args[0], "ERR need numeric width")?;
    let h = parse_double(&args[1], "ERR need numeric height")?;
    if h < 0.0 || w < 0.0 {
        return Err(err("ERR height or width cannot be negative"));
    }
    Ok((w, h, parse_unit(&args[2])?))
}

fn find_geo<'a>(
    ks: &'a mut Keyspace,
    ctx: &mut ExecContext,
    key: &[u8],
) -> Result<Option<&'a ZSetValue>, Reply> {
    let db = ctx.db;
    match ks.find(ctx, db, key, Lookup::Read) {
        None => Ok(None),
        Some(f) => match &f.slot.value {
            Value::ZSet(z) => Ok(Some(&**z)),
            _ => Err(err(errors::WRONGTYPE)),
        },
    }
}

// ---------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------

/// GEOADD key [NX|XX] [CH] longitude latitude member [...], run as ZADD.
pub fn geoadd(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let (mut nx, mut xx) = (false, false);
    let mut longidx = 2;
    while longidx < args.len() {
        let o = &args[longidx];
        if o.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if o.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if !o.eq_ignore_ascii_case(b"ch") {
            break;
        }
        longidx += 1;
    }
    let rest = &args[longidx..];
    if !rest.len().is_multiple_of(3) || (xx && nx) {
        return err(errors::SYNTAX);
    }
    let mut zadd = Vec::with_capacity(longidx + rest.len() / 3 * 2);
    zadd.push(Bytes::from_static(b"zadd"));
    zadd.extend_from_slice(&args[1..longidx]);
    for t in rest.chunks(3) {
        let [lon, lat] = match parse_lonlat(&t[..2]) {
            Ok(xy) => xy,
            Err(e) => return e,
        };
        let score = encode_score(lon, lat).unwrap_or(0);
        zadd.push(Bytes::from(score.to_string()));
        zadd.push(t[2].clone());
    }
    // No pair: ZADD's own syntax error, as in Redis (`GEOADD key CH`).
    zset::zadd(ks, ctx, &zadd, false)
}

/// GEODIST key member1 member2 [unit]
pub fn geodist(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let to_meter = match args.len() {
        5 => match parse_unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return e,
        },
        n if n > 5 => return err(errors::SYNTAX),
        _ => 1.0,
    };
    let z = match find_geo(ks, ctx, &args[1]) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(z)) => z,
    };
    let (Some(s1), Some(s2)) = (z.score(&args[2]), z.score(&args[3])) else {
        return Reply::Nil;
    };
    match (decode_score(s1), decode_score(s2)) {
        (Some([x1, y1]), Some([x2, y2])) => Reply::Bulk(Bytes::from(format_distance(
            distance(x1, y1, x2, y2) / to_meter,
        ))),
        _ => Reply::Nil,
    }
}

/// GEOHASH key [member ...]: standard 11-character geohashes.
pub fn geohash(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
    let z = match find_geo(ks, ctx, &args[1]) {
        Err(e) => return e,
        Ok(z) => z,
    };
    let out = args[2..]
        .iter()
        .map(|m| {
            let Some(xy) = z.and_then(|z| z.score(m)).and_then(decode_score) else {
                return Reply::Nil;
            };
            // Stored hashes use latitudes ±85.05; the standard uses ±90:
            // re-encode the decoded point.
            let r = encode(
                CoordRange {
                    min: -180.0,
                    max: 180.0,
                },
                CoordRange {
                    min: -90.0,
                    max: 90.0,
                },
                xy[0],
                xy[1],
                26,
            )
            .unwrap_or_default();
            let mut buf = [0u8; 11];
            for (i, c) in buf.iter_mut().enumerate() {
                // 52 bits give ten characters; the eleventh is always '0'.
                let idx = if i == 10 {
                    0
                } else {
                    (r.bits >> (52 - (i + 1) * 5)) & 0x1f
                };
                *c = ALPHABET[idx as usize];
            }
            Reply::bulk(&buf)
        })
        .collect();
    Reply::Array(out)
}

/// GEOPOS key [member ...]
pub fn geopos(ks: &mut Keyspace, ctx: &mut ExecContext, args: &[Bytes]) -> Reply {
    let z = match find_geo(ks, ctx, &args[1]) {
        Err(e) => return e,
        Ok(z) => z,
    };
    let out = args[2..]
        .iter()
        .map(
            |m| match z.and_then(|z| z.score(m)).and_then(decode_score) {
                Some([lon, lat]) => {
                    Reply::Array(vec![coord_reply(ctx, lon), coord_reply(ctx, lat)])
                }
                None => Reply::NilArray,
            },
        )
        .collect();
    Reply::Array(out)
}

/// Which command of the search family runs (Redis's `georadiusGeneric` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Search {
    /// GEORADIUS (`ro`: GEORADIUS_RO, no STORE).
    Radius {
        /// Read-only variant.
        ro: bool,
    },
    /// GEORADIUSBYMEMBER (`ro`: the _RO variant).
    ByMember {
        /// Read-only variant.
        ro: bool,
    },
    /// GEOSEARCH.
    Search,
    /// GEOSEARCHSTORE.
    SearchStore,
}

#[derive(Clone, Copy, PartialEq)]
enum Order {
    None,
    Asc,
    Desc,
}

/// GEORADIUS, GEORADIUSBYMEMBER (and _RO), GEOSEARCH, GEOSEARCHSTORE.
pub fn search_command(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    which: Search,
) -> Reply {
    match search_inner(ks, ctx, args, which) {
        Ok(r) | Err(r) => r,
    }
}

fn search_inner(
    ks: &mut Keyspace,
    ctx: &mut ExecContext,
    args: &[Bytes],
    which: Search,
) -> Result<Reply, Reply> {
    let geosearch = matches!(which, Search::Search | Search::SearchStore);
    let src = if which == Search::SearchStore { 2 } else { 1 };
    let z: Option<&ZSetValue> = find_geo(ks, ctx, &args[src])?;
    let mut xy = [0.0, 0.0];
    let mut kind = ShapeKind::Circle { radius: 0.0 };
    let mut conversion = 0.0;
    let mut storekey: Option<&Bytes> = None;
    let mut storedist = false;
    let base = match which {
        Search::Radius { .. } => {
            xy = parse_lonlat(&args[2..4])?;
            let (r, c) = parse_distance(&args[4..6])?;
            (kind, conversion) = (ShapeKind::Circle { radius: r }, c);
            6
        }
        Search::ByMember { .. } => {
            if let Some(z) = z {
                xy = z
                    .score(&args[2])
                    .and_then(decode_score)
                    .ok_or_else(|| err(errors::ZSET_MEMBER_UNDECODABLE))?;
                let (r, c) = parse_distance(&args[3..5])?;
                (kind, conversion) = (ShapeKind::Circle { radius: r }, c);
            }
            5
        }
        Search::Search => 2,
        Search::SearchStore => {
            storekey = Some(&args[1]);
            3
        }
    };
    let nostore = matches!(
        which,
        Search::Radius { ro: true } | Search::ByMember { ro: true }
    );
    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut order = Order::None;
    let mut any = false;
    let mut count: i64 = 0;
    let opts = &args[base.min(args.len())..];
    let remaining = opts.len();
    let mut i = 0;
    while i < remaining {
        let a = &opts[i][..];
        let is = |n: &[u8]| a.eq_ignore_ascii_case(n);
        if is(b"withdist") {
            withdist = true;
        } else if is(b"withhash") {
            withhash = true;
        } else if is(b"withcoord") {
            withcoords = true;
        } else if is(b"any") {
            any = true;
        } else if is(b"asc") {
            order = Order::Asc;
        } else if is(b"desc") {
            order = Order::Desc;
        } else if is(b"count") && i + 1 < remaining {
            count = parse_i64(&opts[i + 1])?;
            if count <= 0 {
                return Err(err(errors::COUNT_MUST_BE_POSITIVE));
            }
            i += 1;
        } else if (is(b"store") || is(b"storedist")) && i + 1 < remaining && !nostore && !geosearch
        {
            storekey = Some(&opts[i + 1]);
            storedist = is(b"storedist");
            i += 1;
        } else if is(b"storedist") && which == Search::SearchStore {
            storedist = true;
        } else if is(b"frommember") && i + 1 < remaining && geosearch && !fromloc {
            // Without a source key parsing goes on; the reply comes after.
            if let Some(z) = z {
                xy = z
                    .score(&opts[i + 1])
                    .and_then(decode_score)
                    .ok_or_else(|| err(errors::ZSET_MEMBER_UNDECODABLE))?;
            }
            frommember = true;
            i += 1;
        } else if is(b"fromlonlat") && i + 2 < remaining && geosearch && !frommember {
            xy = parse_lonlat(&opts[i + 1..i + 3])?;
            fromloc = true;
            i += 2;
        } else if is(b"byradius") && i + 2 < remaining && geosearch && !bybox {
            let (r, c) = parse_distance(&opts[i + 1..i + 3])?;
            (kind, conversion) = (ShapeKind::Circle { radius: r }, c);
            byradius = true;
            i += 2;
        } else if is(b"bybox") && i + 3 < remaining && geosearch && !byradius {
            let (w, h, c) = parse_box(&opts[i + 1..i + 4])?;
            (kind, conversion) = (
                ShapeKind::Box {
                    width: w,
                    height: h,
                },
                c,
            );
            bybox = true;
            i += 3;
        } else {
            return Err(err(errors::SYNTAX));
        }
        i += 1;
    }
    if storekey.is_some() && (withdist || withhash || withcoords) {
        return Err(Reply::Error(format!(
            "ERR {} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if which == Search::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        )));
    }
    let name = String::from_utf8_lossy(&args[0]);
    if geosearch && !(frommember || fromloc) {
        return Err(Reply::Error(format!(
            "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        )));
    }
    if geosearch && !(byradius || bybox) {
        return Err(Reply::Error(format!(
            "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
        )));
    }
    if any && count == 0 {
        return Err(err("ERR the ANY argument requires COUNT argument"));
    }
    let Some(z) = z else {
        return Ok(match storekey {
            Some(dst) => {
                let db = ctx.db;
                if ks.delete(ctx, db, dst) {
                    ctx.notify(crate::notify::GENERIC, "del", dst);
                    ctx.stats.dirty += 1;
                    ctx.propagate_as_sent(args);
                }
                Reply::Integer(0)
            }
            None => Reply::Array(Vec::new()),
        });
    };
    // COUNT means "the nearest N" unless ANY says any N will do.
    if count != 0 && order == Order::None && !any {
        order = Order::Asc;
    }
    let shape = Shape {
        kind,
        conversion,
        xy,
    };
    let mut points = search(z, &shape, if any { count as usize } else { 0 });
    if points.is_empty() && storekey.is_none() {
        return Ok(Reply::Array(Vec::new()));
    }
    let returned = if count == 0 {
        points.len()
    } else {
        points.len().min(count as usize)
    };
    match order {
        Order::Asc => points.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Order::Desc => points.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
        Order::None => {}
    }
    points.truncate(returned);
    let Some(dst) = storekey else {
        let extra = withdist as usize + withhash as usize + withcoords as usize;
        let out = points
            .into_iter()
            .map(|p| {
                if extra == 0 {
                    return Reply::Bulk(p.member);
                }
                let mut item = Vec::with_capacity(extra + 1);
                item.push(Reply::Bulk(p.member));
                if withdist {
                    item.push(Reply::Bulk(Bytes::from(format_distance(
                        p.dist / conversion,
                    ))));
                }
                if withhash {
                    item.push(Reply::Integer(p.score as i64));
                }
                if withcoords {
                    item.push(Reply::Array(vec![
                        coord_reply(ctx, p.xy[0]),
                        coord_reply(ctx, p.xy[1]),
                    ]));
                }
                Reply::Array(item)
            })
            .collect();
        return Ok(Reply::Array(out));
    };
    let db = ctx.db;
    let n = points.len();
    let deleted = ks.delete(ctx, db, dst);
    if n > 0 {
        let stored = ZSetValue::from_pairs(points.into_iter().map(|p| {
            let score = if storedist {
                p.dist / conversion
            } else {
                p.score
            };
            (p.member, score)
        }));
        ks.insert_replacing(ctx, db, dst, Value::ZSet(Box::new(stored)), None, deleted);
        let event = if geosearch {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        ctx.notify(crate::notify::ZSET, event, dst);
        ctx.ready_keys.push((db, dst.clone()));
        ctx.stats.dirty += n as u64;
        ctx.propagate_as_sent(args);
    } else if deleted {
        ctx.notify(crate::notify::GENERIC, "del", dst);
        ctx.stats.dirty += 1;
        ctx.propagate_as_sent(args);
    }
    Ok(Reply::Integer(n as i64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bulk, int, T};

    #[test]
    fn scores_match_redis() {
        // Values from redis-server 7.0.15 (GEOADD, then ZSCORE / GEOPOS).
        assert_eq!(encode_score(13.361389, 38.115556), Some(3479099956230698));
        assert_eq!(encode_score(15.087269, 37.502669), Some(3479447370796909));
        let [lon, lat] = decode_score(3479099956230698.0).unwrap();
        assert_eq!(format_human(lon), "13.36138933897018433");
        assert_eq!(format_human(lat), "38.11555639549629859");
        assert_eq!(encode_score(181.0, 0.0), None);
        assert_eq!(encode_score(0.0, 85.06), None);
    }

    #[test]
    fn interleave_round_trips() {
        for (a, b) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3ffffff, 0x1234567),
            (u32::MAX, 7),
        ] {
            let d = deinterleave64(interleave64(a, b));
            assert_eq!((d as u32, (d >> 32) as u32), (a, b));
        }
    }

    #[test]
    fn distance_formatting() {
        assert_eq!(format_distance(0.0), "0.0000");
        assert_eq!(format_distance(166274.15156960033), "166274.1516");
        assert_eq!(format_distance(0.00004), "0.0000");
        assert_eq!(format_human(-0.0), "0");
        assert_eq!(format_human(2.5), "2.5");
        assert_eq!(format_human(3.0), "3");
    }

    #[test]
    fn commands() {
        let mut t = T::new();
        assert_eq!(
            t.run("GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania"),
            int(2)
        );
        assert_eq!(
            t.effects(),
            vec!["zadd Sicily 3479099956230698 Palermo 3479447370796909 Catania"]
        );
        assert_eq!(t.run("GEODIST Sicily Palermo Catania"), bulk("166274.1516"));
        assert_eq!(t.run("GEODIST Sicily Palermo Catania km"), bulk("166.2742"));
        assert_eq!(
            t.run("GEOHASH Sicily Palermo Catania nope"),
            Reply::Array(vec![bulk("sqc8b49rny0"), bulk("sqdtr74hyu0"), Reply::Nil])
        );
        assert_eq!(
            t.run("GEORADIUS Sicily 15 37 200 km ASC"),
            Reply::Array(vec![bulk("Catania"), bulk("Palermo")])
        );
        assert_eq!(
            t.run("GEORADIUS Sicily 15 37 100 km WITHDIST"),
            Reply::Array(vec![Reply::Array(vec![bulk("Catania"), bulk("56.4413")])])
        );
        assert_eq!(
            t.run("GEOSEARCH Sicily FROMLONLAT 15 37 BYBOX 400 400 km DESC"),
            Reply::Array(vec![bulk("Palermo"), bulk("Catania")])
        );
        assert_eq!(
            t.run("GEOSEARCHSTORE dst Sicily FROMMEMBER Palermo BYRADIUS 10 km"),
            int(1)
        );
        assert_eq!(
            t.run("ZSCORE dst Palermo"),
            Reply::Double(3479099956230698.0)
        );
        assert_eq!(
            t.run("GEOADD Sicily 200 1 x"),
            err_reply("ERR invalid longitude,latitude pair 200.000000,1.000000")
        );
    }

    fn err_reply(s: &str) -> Reply {
        Reply::Error(s.to_owned())
    }
}
