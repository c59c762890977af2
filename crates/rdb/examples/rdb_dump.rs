//! Prints the contents of an RDB file: `cargo run -p shardis-rdb --example rdb_dump -- FILE`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: rdb_dump FILE");
    let data = std::fs::read(&path).expect("read file");
    let mut reader = match shardis_rdb::RdbReader::new(&data) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    println!("version {}", reader.version());
    loop {
        match reader.next_item() {
            Ok(Some(item)) => println!("{item:?}"),
            Ok(None) => break,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        }
    }
}
