//! A real PostgreSQL server for the tests: a cluster made by `initdb` in a temporary folder,
//! started on a free loopback port (as the `postgres` user when the tests run as root, since
//! the server refuses root), with a password, and stopped when dropped.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user and password of the test server.
pub const USER: &str = "userport";
/// The test server's password (the tests check that it is never printed).
pub const PASSWORD: &str = "s3cret-Pa55word";

/// A running server.
pub struct Server {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The folder of PostgreSQL's programs (`initdb`, `postgres`), from PATH or the
/// distribution's `/usr/lib/postgresql/VERSION/bin`.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("postgres").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").is_file())
            .collect();
        versions.sort();
        versions.pop()
    })
}

/// The uid and gid of a user of /etc/passwd.
fn account(name: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name))
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))?
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// Starts a server, or `None` when PostgreSQL is not installed and the run does not
    /// require it (`.ci/run` installs it and sets `USERPORT_REQUIRE_POSTGRES=1`).
    pub fn start() -> Option<Server> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("USERPORT_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is required (USERPORT_REQUIRE_POSTGRES) but no initdb was found"
            );
            eprintln!("skipped: PostgreSQL is not installed (.ci/run installs it)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let owner = if is_root() {
            Some(
                account("postgres")
                    .or_else(|| account("nobody"))
                    .expect("a user to run the server as"),
            )
        } else {
            None
        };
        let as_owner = |cmd: &mut Command| {
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
        };
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .current_dir(dir.path())
            .stdout(Stdio::null());
        as_owner(&mut initdb);
        let out = initdb.output().expect("running initdb");
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .args(["-D", data.to_str().unwrap(), "-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-k", dir.path().to_str().unwrap()])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_owner(&mut postgres);
        let child = postgres.spawn().expect("starting postgres");
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.execute("SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// The URL of the database `postgres` without the password (given by `PGPASSWORD`).
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs `f` with a client of the server, on a runtime of its own.
    fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, tokio_postgres::Error> {
        let url = format!(
            "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/postgres",
            self.port
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            f(&client).await
        })
    }

    /// Runs SQL statements.
    pub fn execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.with_client(async |client| client.batch_execute(sql).await)
    }

    /// The rows of a query, each column as text (NULL as `None`).
    pub fn rows(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self
            .with_client(async |client| client.simple_query(sql).await)
            .unwrap();
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// Loads a file of SQL statements.
    pub fn load(&self, path: &Path) {
        self.execute(&std::fs::read_to_string(path).unwrap())
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A fast shutdown (SIGINT), then wait for it.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
