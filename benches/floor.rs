//! The parse floor of the side-by-side benchmark: reads an NDJSON file on every core (byte
//! ranges cut at line ends) and parses each line with jiter, skipping the values. Nothing a
//! real job does can take less. `floor FILE` prints the lines and the seconds. Built by
//! `benches/compare.sh` with rustc against the jiter of the release build.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .expect("usage: floor FILE");
    let started = Instant::now();
    let len = std::fs::metadata(&path)?.len();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let path = path.clone();
            std::thread::spawn(move || -> std::io::Result<u64> {
                let (start, end) = (len * t / threads, len * (t + 1) / threads);
                let mut reader = BufReader::with_capacity(4 << 20, File::open(&path)?);
                reader.seek(SeekFrom::Start(start))?;
                let mut pos = start;
                let mut line = Vec::with_capacity(4096);
                if start > 0 {
                    // The line that straddles the cut belongs to the range before.
                    pos += reader.read_until(b'\n', &mut line)? as u64;
                }
                let mut lines = 0;
                while pos < end {
                    line.clear();
                    let n = reader.read_until(b'\n', &mut line)?;
                    if n == 0 {
                        break;
                    }
                    pos += n as u64;
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    jiter::Jiter::new(&line)
                        .next_skip()
                        .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
                    lines += 1;
                }
                Ok(lines)
            })
        })
        .collect();
    let mut lines = 0;
    for handle in handles {
        lines += handle.join().expect("a parsing thread panicked")?;
    }
    println!("{lines} lines in {:.2} s", started.elapsed().as_secs_f64());
    Ok(())
}
