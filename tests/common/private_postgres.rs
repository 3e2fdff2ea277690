//! A private PostgreSQL server for fault tests: `initdb` in a temp dir, run as the
//! `postgres` user on its own port, stopped and started by the test without touching the
//! shared server other tests use.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct PrivatePostgres {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

fn bin_dir() -> PathBuf {
    let root = PathBuf::from("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("PostgreSQL server binaries are needed under {} ({e}); run `bash .ci/run` to install them", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql/*/bin")
}

fn as_postgres(cmd: &str) -> std::process::Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--", "sh", "-c", cmd])
        .output()
        .expect("runuser")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivatePostgres {
    pub fn start() -> PrivatePostgres {
        let bin = bin_dir();
        let dir = std::env::temp_dir().join(format!("beian-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let chown = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(chown.success(), "chown {}", dir.display());
        let out = as_postgres(&format!(
            "{}/initdb -D {}/data -U postgres --auth=trust -E UTF8 >/dev/null",
            bin.display(),
            dir.display()
        ));
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pg = PrivatePostgres {
            dir,
            port: free_port(),
            bin,
        };
        pg.up();
        pg
    }

    pub fn up(&self) {
        let out = as_postgres(&format!(
            "{bin}/pg_ctl -D {dir}/data -l {dir}/log -w -t 30 -o '-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off' start",
            bin = self.bin.display(),
            dir = self.dir.display(),
            port = self.port
        ));
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn down(&self) {
        let out = as_postgres(&format!(
            "{}/pg_ctl -D {}/data -m immediate -w stop",
            self.bin.display(),
            self.dir.display()
        ));
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&format!(
            "{}/pg_ctl -D {}/data -m immediate -w stop",
            self.bin.display(),
            self.dir.display()
        ));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
