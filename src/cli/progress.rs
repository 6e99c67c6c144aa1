//! A progress bar of the input bytes read, with throughput: only on a terminal, only after
//! the first second, never with `--quiet`.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A running progress bar; it goes away when dropped.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Shows the bytes of `read` out of `total` (when known) on stderr, from the first second on.
pub fn watch(read: Arc<AtomicU64>, total: Option<u64>, quiet: bool) -> Progress {
    let done = Arc::new(AtomicBool::new(false));
    if quiet || !std::io::stderr().is_terminal() {
        return Progress { done, thread: None };
    }
    let stop = done.clone();
    let thread = std::thread::Builder::new()
        .name("userport-progress".into())
        .spawn(move || {
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(1) {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if total.is_some() {
                "read [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}"
            } else {
                "{spinner} read {bytes} {bytes_per_sec}"
            };
            bar.set_style(
                ProgressStyle::with_template(template)
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            while !stop.load(Ordering::Relaxed) {
                bar.set_position(read.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        })
        .ok();
    Progress { done, thread }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
