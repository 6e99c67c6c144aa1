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

/// Bars of a tenant's export (on stderr, on a terminal): the job's `percentage_done` (a
/// spinner while Auth0 gives none), then the download's bytes. `None` when not `show`.
pub fn export_bars(show: bool) -> Option<crate::auth0::export::OnProgress> {
    use crate::auth0::export::Progress as Step;
    if !show {
        return None;
    }
    let style = |template: &str| {
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
    };
    let job = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stderr());
    job.set_style(style("{spinner} export [{bar:30}] {pos}% {prefix}"));
    job.enable_steady_tick(Duration::from_millis(200));
    let download: std::sync::Mutex<Option<ProgressBar>> = std::sync::Mutex::new(None);
    Some(Arc::new(move |step: Step<'_>| match step {
        Step::Job(state) => {
            if let Some(done) = state.percentage_done {
                job.set_position(done.clamp(0.0, 100.0) as u64);
            }
            job.set_prefix(match state.time_left_seconds {
                Some(left) => format!("{} ({left:.0} s left)", state.status),
                None => state.status.clone(),
            });
        }
        Step::JobDone => job.finish_and_clear(),
        Step::Downloaded { received, total } => {
            if let Ok(mut bar) = download.lock() {
                bar.get_or_insert_with(|| {
                    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
                    bar.set_style(style(
                        "download [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    ));
                    bar
                })
                .set_position(received);
            }
        }
        Step::DownloadDone => {
            if let Ok(mut bar) = download.lock()
                && let Some(bar) = bar.take()
            {
                bar.finish_and_clear();
            }
        }
    }))
}
