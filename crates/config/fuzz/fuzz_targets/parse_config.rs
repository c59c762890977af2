//! Feeds arbitrary bytes to the config parser: it must reject or accept, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shardis_config::Config;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut config = Config::default();
    if let Err(e) = config.apply_text(&text, Some("fuzz.conf")) {
        let _ = e.redis_message();
    }
    // Whatever loaded must format for CONFIG GET, and each line doubles as a glob pattern,
    // a CONFIG SET value and command-line arguments.
    let _ = config.get("*");
    for line in text.lines().take(8) {
        let _ = config.get(line);
        let (name, value) = line.split_once(' ').unwrap_or((line, ""));
        let _ = config.set(name, value);
        let args: Vec<String> = line.split(' ').map(str::to_string).collect();
        let _ = Config::default().apply_args(&args);
    }
});
