//! LOLWUT: Redis's version-specific computer art (lolwut.c, lolwut5.c,
//! lolwut6.c of 7.0.15), drawn on the same canvas with the same arithmetic
//! (f32 where Redis uses `float`), so the deterministic parts (sizes, the
//! undisplaced top rows of Schotter, captions) equal Redis's byte for byte.
//! The random parts use shardis's PRNG where Redis calls `rand()`; Redis's
//! own output differs from call to call there too.

use crate::errors;
use bytes::Bytes;
use rand::Rng;
use shardis_protocol::{decode::parse_int, Reply};

/// `LOLWUT [VERSION v] [version-specific arguments]`.
pub fn lolwut(args: &[Bytes]) -> Reply {
    let mut args = &args[1..];
    let mut version: Option<u32> = None;
    if args.len() >= 2 && args[0].eq_ignore_ascii_case(b"version") {
        let Some(v) = parse_int(&args[1]) else {
            return Reply::error(errors::NOT_INTEGER);
        };
        // Redis prints `%u.0.0` of `(unsigned int)ver` and tests its first
        // characters; only 5 and 6 pick an artwork.
        version = Some(v as u32);
        args = &args[2..];
    }
    let text = match version {
        Some(5) => match schotter(args) {
            Ok(t) => t,
            Err(e) => return e,
        },
        Some(6) => match skyline(args) {
            Ok(t) => t,
            Err(e) => return e,
        },
        _ => format!("Redis ver. {}\n", crate::REDIS_VERSION),
    };
    Reply::Verbatim("txt", Bytes::from(text))
}

/// Optional integer arguments with defaults (Redis's getLongFromObjectOrReply).
fn longs<const N: usize>(args: &[Bytes], mut out: [i64; N]) -> Result<[i64; N], Reply> {
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = parse_int(a).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
    }
    Ok(out)
}

/// Redis's `rand()`: a non-negative 31-bit integer.
fn rand31(rng: &mut impl Rng) -> i32 {
    rng.gen_range(0..=i32::MAX)
}

const RAND_MAX: f32 = i32::MAX as f32;

struct Canvas {
    width: i32,
    height: i32,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(width: i32, height: i32, bg: u8) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![bg; (width.max(0) as usize) * (height.max(0) as usize)],
        }
    }

    fn set(&mut self, x: i32, y: i32, color: u8) {
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return;
        }
        self.pixels[(x + y * self.width) as usize] = color;
    }

    fn get(&self, x: i32, y: i32) -> u8 {
        if x < 0 || x >= self.width || y < 0 || y >= self.height {
            return 0;
        }
        self.pixels[(x + y * self.width) as usize]
    }

    /// Bresenham, as lwDrawLine.
    fn line(&mut self, mut x1: i32, mut y1: i32, x2: i32, y2: i32, color: u8) {
        let dx = (x2 - x1).abs();
        let dy = (y2 - y1).abs();
        let sx = if x1 < x2 { 1 } else { -1 };
        let sy = if y1 < y2 { 1 } else { -1 };
        let mut err = dx - dy;
        loop {
            self.set(x1, y1, color);
            if x1 == x2 && y1 == y2 {
                break;
            }
            let e2 = err * 2;
            if e2 > -dy {
                err -= dy;
                x1 += sx;
            }
            if e2 < dx {
                err += dx;
                y1 += sy;
            }
        }
    }

    /// A square centred at x,y rotated by `angle`, as lwDrawSquare (C's
    /// float/double mix kept: `size` and `k` are floats, the trigonometry double).
    fn square(&mut self, x: i32, y: i32, size: f32, angle: f32, color: u8) {
        // Redis's literal (not SQRT_2 exactly), so rounding matches.
        #[allow(clippy::approx_constant)]
        let mut size = (size as f64 / 1.4142135623) as f32;
        size = (size as f64).round() as f32;
        let mut k = (std::f64::consts::FRAC_PI_4 + angle as f64) as f32;
        let mut px = [0i32; 4];
        let mut py = [0i32; 4];
        for j in 0..4 {
            px[j] = ((k as f64).sin() * size as f64 + x as f64).round() as i32;
            py[j] = ((k as f64).cos() * size as f64 + y as f64).round() as i32;
            k = (k as f64 + std::f64::consts::FRAC_PI_2) as f32;
        }
        for j in 0..4 {
            self.line(px[j], py[j], px[(j + 1) % 4], py[(j + 1) % 4], color);
        }
    }
}

/// LOLWUT 5: Georg Nees's Schotter in braille characters.
/// Arguments: `[columns=66] [squares-per-row=8] [squares-per-col=12]`.
fn schotter(args: &[Bytes]) -> Result<String, Reply> {
    let [cols, per_row, per_col] = longs(args, [66, 8, 12])?;
    let cols = cols.clamp(1, 1000) as i32;
    let per_row = per_row.clamp(1, 200) as i32;
    let per_col = per_col.clamp(1, 200) as i32;

    let canvas_width = cols * 2;
    let padding = if canvas_width > 4 { 2 } else { 0 };
    let side = (canvas_width - padding * 2) as f32 / per_row as f32;
    let canvas_height = (side * per_col as f32 + (padding * 2) as f32) as i32;
    let mut canvas = Canvas::new(canvas_width, canvas_height, 0);
    let mut rng = rand::thread_rng();
    for y in 0..per_col {
        for x in 0..per_row {
            let mut sx = (x as f32 * side + side / 2.0 + padding as f32) as i32;
            let mut sy = (y as f32 * side + side / 2.0 + padding as f32) as i32;
            // Lower rows are rotated and moved more and more at random.
            let mut angle = 0f32;
            if y > 1 {
                let mut r = [0f32; 3];
                for v in &mut r {
                    *v = rand31(&mut rng) as f32 / RAND_MAX / per_col as f32 * y as f32;
                }
                for v in &mut r {
                    if rand31(&mut rng) % 2 == 1 {
                        *v = -*v;
                    }
                }
                angle = r[0];
                sx = (sx as f32 + r[1] * side / 3.0) as i32;
                sy = (sy as f32 + r[2] * side / 3.0) as i32;
            }
            canvas.square(sx, sy, side, angle, 1);
        }
    }

    let mut text = String::new();
    let mut y = 0;
    while y < canvas.height {
        let mut x = 0;
        while x < canvas.width {
            // A 2x4 pixel block is one braille character (bits 0-7 as
            // lwTranslatePixelsGroup arranges them).
            let bits = [
                (0, 0),
                (0, 1),
                (0, 2),
                (1, 0),
                (1, 1),
                (1, 2),
                (0, 3),
                (1, 3),
            ];
            let mut byte = 0u32;
            for (bit, (dx, dy)) in bits.iter().enumerate() {
                if canvas.get(x + dx, y + dy) != 0 {
                    byte |= 1 << bit;
                }
            }
            text.push(char::from_u32(0x2800 + byte).unwrap_or(' '));
            x += 2;
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
        y += 4;
    }
    text.push_str("\nGeorg Nees - schotter, plotter on paper, 1968. Redis ver. ");
    text.push_str(crate::REDIS_VERSION);
    text.push('\n');
    Ok(text)
}

struct Skyscraper {
    xoff: i32,
    width: i32,
    height: i32,
    windows: bool,
    color: u8,
}

fn skyscraper(canvas: &mut Canvas, si: &Skyscraper, rng: &mut impl Rng) {
    let starty = canvas.height - 1;
    let endy = starty - si.height + 1;
    let mut y = starty;
    while y >= endy {
        for x in si.xoff..si.xoff + si.width {
            // The roof is four pixels narrower.
            if y == endy && (x <= si.xoff + 1 || x >= si.xoff + si.width - 2) {
                continue;
            }
            let mut color = si.color;
            if si.windows
                && x > si.xoff + 1
                && x < si.xoff + si.width - 2
                && y > endy + 1
                && y < starty - 1
            {
                let relx = x - (si.xoff + 1);
                let rely = y - (endy + 1);
                // Windows two pixels wide, one tall, in one of the two greys.
                if (relx / 2) % 2 != 0 && rely % 2 != 0 {
                    loop {
                        color = 1 + (rand31(rng) % 2) as u8;
                        if color != si.color {
                            break;
                        }
                    }
                    if relx % 2 != 0 {
                        color = canvas.get(x - 1, y);
                    }
                }
            }
            canvas.set(x, y, color);
        }
        y -= 1;
    }
}

/// LOLWUT 6: a skyline in terminal colours. Arguments: `[columns=80] [rows=20]`.
fn skyline(args: &[Bytes]) -> Result<String, Reply> {
    let [cols, rows] = longs(args, [80, 20])?;
    let cols = cols.clamp(1, 1000) as i32;
    let rows = rows.clamp(1, 1000) as i32;
    let mut canvas = Canvas::new(cols, rows, 3);
    let mut rng = rand::thread_rng();
    let h = canvas.height;
    // Background buildings without windows, the lighter grey behind.
    for color in [2u8, 1] {
        let mut offset = -10;
        while offset < canvas.width {
            offset += rand31(&mut rng) % 8;
            let width = 10 + rand31(&mut rng) % 9;
            let height = if color == 2 {
                h / 2 + (rand31(&mut rng) % h) / 2
            } else {
                h / 2 + (rand31(&mut rng) % h) / 3
            };
            let si = Skyscraper {
                xoff: offset,
                width,
                height,
                windows: false,
                color,
            };
            skyscraper(&mut canvas, &si, &mut rng);
            offset += if color == 2 { width / 2 } else { width + 1 };
        }
    }
    // Foreground buildings with windows.
    let mut offset = -10;
    while offset < canvas.width {
        offset += rand31(&mut rng) % 8;
        let mut width = 5 + rand31(&mut rng) % 14;
        if width % 4 != 0 {
            width += width % 3;
        }
        let height = h / 3 + (rand31(&mut rng) % h) / 2;
        let si = Skyscraper {
            xoff: offset,
            width,
            height,
            windows: true,
            color: 0,
        };
        skyscraper(&mut canvas, &si, &mut rng);
        offset += width + 5;
    }

    let mut text = String::new();
    for y in 0..canvas.height {
        for x in 0..canvas.width {
            let esc = match canvas.get(x, y) {
                1 => "0;90;100m",
                2 => "0;37;47m",
                3 => "0;97;107m",
                _ => "0;30;40m",
            };
            text.push_str("\x1b[");
            text.push_str(esc);
            text.push_str(" \x1b[0m");
        }
        if y != canvas.height - 1 {
            text.push('\n');
        }
    }
    text.push_str(
        "\nDedicated to the 8 bit game developers of past and present.\n\
         Original 8 bit image from Plaguemon by hikikomori. Redis ver. ",
    );
    text.push_str(crate::REDIS_VERSION);
    text.push('\n');
    Ok(text)
}
