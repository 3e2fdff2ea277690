//! A private RabbitMQ node for fault tests: `rabbitmq-server -detached` as the `rabbitmq`
//! user with its own node name, ports, Mnesia and log directories and config, so stopping
//! it never disturbs the shared broker other tests use.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

pub struct PrivateRabbitmq {
    pub dir: PathBuf,
    pub node: String,
    pub port: u16,
    dist_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PrivateRabbitmq {
    pub fn start() -> PrivateRabbitmq {
        assert!(
            std::path::Path::new("/usr/sbin/rabbitmq-server").exists(),
            "rabbitmq-server is needed for this test; run `bash .ci/run` to install it"
        );
        let id = uuid::Uuid::new_v4().simple().to_string()[..10].to_string();
        let dir = std::env::temp_dir().join(format!("beian-rmq-{id}"));
        for sub in ["mnesia", "log"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let rabbit = PrivateRabbitmq {
            node: format!("beian{id}@localhost"),
            port: free_port(),
            dist_port: free_port(),
            dir,
        };
        std::fs::write(rabbit.dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            rabbit.dir.join("rabbitmq.conf"),
            format!(
                "listeners.tcp.local = 127.0.0.1:{}\nloopback_users = none\n",
                rabbit.port
            ),
        )
        .unwrap();
        std::fs::write(rabbit.dir.join("rabbitmq-env.conf"), "").unwrap();
        let chown = Command::new("chown")
            .args(["-R", "rabbitmq:rabbitmq"])
            .arg(&rabbit.dir)
            .status()
            .unwrap();
        assert!(chown.success());
        let out = rabbit.command("rabbitmq-server", &["-detached"]);
        assert!(
            out.status.success(),
            "rabbitmq-server: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rabbit.await_startup();
        rabbit
    }

    fn command(&self, program: &str, args: &[&str]) -> std::process::Output {
        let d = self.dir.display();
        Command::new("runuser")
            .args(["-u", "rabbitmq", "--", "env"])
            .arg(format!("RABBITMQ_NODENAME={}", self.node))
            .arg(format!("RABBITMQ_NODE_PORT={}", self.port))
            .arg(format!("RABBITMQ_DIST_PORT={}", self.dist_port))
            .arg(format!("RABBITMQ_MNESIA_BASE={d}/mnesia"))
            .arg(format!("RABBITMQ_LOG_BASE={d}/log"))
            .arg(format!("RABBITMQ_ENABLED_PLUGINS_FILE={d}/enabled_plugins"))
            .arg(format!("RABBITMQ_CONFIG_FILE={d}/rabbitmq.conf"))
            .arg(format!("RABBITMQ_CONF_ENV_FILE={d}/rabbitmq-env.conf"))
            .arg("HOME=/var/lib/rabbitmq")
            .arg(program)
            .args(args)
            .output()
            .expect("runuser")
    }

    pub fn ctl(&self, args: &[&str]) {
        let mut all = vec!["-n", self.node.as_str()];
        all.extend_from_slice(args);
        let out = self.command("rabbitmqctl", &all);
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits until the node runs (it takes a few seconds to register after `-detached`).
    pub fn await_startup(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let out = self.command(
                "rabbitmqctl",
                &["-n", self.node.as_str(), "await_startup", "--timeout", "10"],
            );
            if out.status.success() {
                return;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "private RabbitMQ {} did not start: {}",
                    self.node,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Drop for PrivateRabbitmq {
    fn drop(&mut self) {
        let mut all = vec!["-n", self.node.as_str(), "stop"];
        all.truncate(3);
        let _ = self.command("rabbitmqctl", &all);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
