//! Temporary files and folders of a run, and how a run ends when it is cut short.
//!
//! Every output is written under a temporary name first (`.userport-PID-….partial` beside a
//! report, `.userport-PID-…` beside a prepared folder) and sorts spill into one folder per
//! run (`userport-PID-…` in the system's temporary folder). Each of them is registered here
//! while it exists, so that SIGINT, SIGTERM or a panic in any thread removes them all before
//! the process ends (status 130, 143, or 2 for a panic). After a SIGKILL nothing can run:
//! the names carry the process id, and the next run removes those whose process is gone
//! ([`sweep`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The paths to remove if the run is cut short.
static TRACKED: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The spill folder of this run, made on first use.
static SPILL: OnceLock<Option<PathBuf>> = OnceLock::new();

fn tracked() -> MutexGuard<'static, BTreeSet<PathBuf>> {
    // A panic while the lock was held must not stop the clean-up.
    TRACKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A registered temporary path: removed from the register when dropped (its owner removes
/// or renames the path itself).
#[derive(Debug)]
pub struct Tracked(PathBuf);

impl Tracked {
    /// Makes a temporary file or folder with `make` and registers it (its path by `path`)
    /// in one step: a signal or a panic elsewhere waits until it is registered, so that it
    /// cannot be left behind between the two.
    pub fn create<T>(
        make: impl FnOnce() -> std::io::Result<T>,
        path: impl Fn(&T) -> &Path,
    ) -> std::io::Result<(T, Tracked)> {
        let mut paths = tracked();
        let made = make()?;
        let at = path(&made).to_path_buf();
        paths.insert(at.clone());
        Ok((made, Tracked(at)))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        tracked().remove(&self.0);
    }
}

/// The name prefix of this process's temporary files and folders beside outputs.
pub fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| format!(".userport-{}-", std::process::id()))
}

/// A builder of this process's temporary files and folders beside `dir` (whose leftovers of
/// killed runs it removes first), made with `mode` less the umask, as `open` and `mkdir`
/// would make them.
pub fn builder(dir: &Path, mode: u32) -> tempfile::Builder<'static, 'static> {
    sweep(dir, ".userport-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = mode;
    builder
}

/// Removes every registered path (files and folders) and the spill folder; the lock stays
/// held by the caller's guard so that nothing new is registered meanwhile.
fn remove_all(paths: &BTreeSet<PathBuf>) {
    for path in paths.iter().chain(SPILL.get().and_then(Option::as_ref)) {
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let _ = std::fs::remove_dir_all(path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {}
        }
    }
}

/// Removes what this run left in the temporary folder (its spill folder): for the end of a
/// run that went well or failed cleanly.
pub fn finish() {
    let paths = tracked();
    remove_all(&paths);
}

/// Removes every temporary path and ends the process with `code`, without unwinding.
pub fn exit(code: i32) -> ! {
    // A thread that is making a temporary file holds the register for that long; one that
    // panicked while holding it never lets go: after a while, exit without the clean-up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let paths = match TRACKED.try_lock() {
            Ok(paths) => paths,
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            Err(std::sync::TryLockError::WouldBlock) => std::process::exit(code),
        };
        remove_all(&paths);
        // The lock is held until the process is gone: no new temporary path is registered.
        std::process::exit(code)
    }
}

/// Installs the panic hook (a panic in any thread prints its message, removes every
/// temporary path and exits with status 2, instead of leaving other threads waiting) and
/// a thread that does the same on SIGINT (status 130) and SIGTERM (status 143).
pub fn install() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a thread panicked".to_string());
        let thread = std::thread::current();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "userport: error: internal error in thread '{}'{at}: {message}; the run was stopped \
             and its temporary files removed (no output file was put in place)",
            thread.name().unwrap_or("unnamed")
        );
        exit(2)
    }));
    #[cfg(unix)]
    {
        let spawned = std::thread::Builder::new()
            .name("userport-signals".into())
            .spawn(|| {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async {
                    let (Ok(mut interrupt), Ok(mut terminate)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                    ) else {
                        return;
                    };
                    let code = tokio::select! {
                        _ = interrupt.recv() => 130,
                        _ = terminate.recv() => 143,
                    };
                    eprintln!("userport: stopped by a signal; temporary files removed");
                    exit(code)
                })
            });
        drop(spawned);
    }
}

/// The folder this run's sorts spill into (made on first use, inside the system's temporary
/// folder, removed at the end of the run or when it is cut short); `None` when it cannot be
/// made (sorts then spill where DataFusion would put them).
pub fn spill_dir() -> Option<PathBuf> {
    SPILL
        .get_or_init(|| {
            let root = std::env::temp_dir();
            sweep(&root, "userport-");
            let dir = tempfile::Builder::new()
                .prefix(&format!("userport-{}-", std::process::id()))
                .tempdir_in(&root)
                .ok()?;
            Some(dir.keep())
        })
        .clone()
}

/// How long a leftover must have been left untouched before [`sweep`] removes it: a folder
/// shared between machines may hold the files of a running process of another machine,
/// whose process id means nothing here.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Removes the entries of `dir` named `{name}PID-…` whose process is gone and which were
/// not modified for [`STALE_AFTER`]: what a run killed with SIGKILL left behind. Entries of
/// running processes are left alone.
pub fn sweep(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(name)) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if pid == std::process::id() || alive(pid) || !stale {
            continue;
        }
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                let _ = std::fs::remove_dir_all(&path);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&path);
            }
            Err(_) => {}
        }
    }
}

/// Whether process `pid` runs (where that cannot be told, it is taken to run).
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return true;
    }
    proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_removes_the_leftovers_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        // No process has the largest pid the kernel never hands out.
        let dead = dir.path().join(".userport-4194305-abc.partial");
        let mine = dir.path().join(format!("{}abc.partial", prefix()));
        let other = dir.path().join("notes.txt");
        let dead_dir = dir.path().join(".userport-4194305-xyz");
        let recent = dir.path().join(".userport-4194305-new.partial");
        for f in [&dead, &mine, &other, &recent] {
            std::fs::write(f, "x").unwrap();
        }
        std::fs::create_dir(&dead_dir).unwrap();
        std::fs::write(dead_dir.join("users-0001.json"), "[]").unwrap();
        let long_ago = std::time::SystemTime::now() - 2 * STALE_AFTER;
        for f in [&dead, &mine, &other, &dead_dir] {
            std::fs::File::open(f)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        sweep(dir.path(), ".userport-");
        assert!(!dead.exists() && !dead_dir.exists());
        // Its own files, others' files and a recent leftover stay.
        assert!(mine.exists() && other.exists() && recent.exists());
    }
}
