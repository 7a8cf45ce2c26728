//! A real OCI registry on loopback: the CNCF distribution server from
//! Debian's `docker-registry` package, on a free port, with its storage in
//! a temporary directory that tests may tamper with. Stopped when dropped.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct OciRegistry {
    child: Option<Child>,
    root: tempfile::TempDir,
    ip: IpAddr,
    port: u16,
    /// An htpasswd line (`user:bcrypt-hash`) when clients must log in.
    login: Option<String>,
}

impl OciRegistry {
    /// Start a registry. Panics, saying what to install, when the server is
    /// not on this machine.
    pub fn start() -> Self {
        Self::start_with(IpAddr::V4(Ipv4Addr::LOCALHOST), None)
    }

    /// Start a registry on this machine's address on its network (not
    /// loopback), which clients must not reach over plain HTTP unless told to.
    pub fn start_off_loopback() -> Self {
        // Connecting a UDP socket sends nothing; it only picks the address
        // the machine would send from.
        let ip = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("10.255.255.255:9").map(|()| s))
            .and_then(|s| s.local_addr())
            .map(|a| a.ip())
            .ok()
            .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
            .expect("this machine has an address besides loopback");
        Self::start_with(ip, None)
    }

    /// Start a registry that lets in only `user` with the password whose
    /// bcrypt hash is `hash` (HTTP basic authentication).
    pub fn start_with_login(user: &str, hash: &str) -> Self {
        Self::start_with(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(format!("{user}:{hash}")),
        )
    }

    fn start_with(ip: IpAddr, login: Option<String>) -> Self {
        let root = tempfile::tempdir().expect("a temporary directory");
        let port = TcpListener::bind((ip, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut registry = OciRegistry {
            child: None,
            root,
            ip,
            port,
            login,
        };
        registry.spawn();
        registry
    }

    fn spawn(&mut self) {
        let config = self.root.path().join("config.yml");
        let auth = match &self.login {
            Some(line) => {
                let file = self.root.path().join("htpasswd");
                std::fs::write(&file, format!("{line}\n")).expect("write the htpasswd file");
                format!(
                    "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                    file.display()
                )
            }
            None => String::new(),
        };
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n{auth}http:\n  addr: {}\n",
                self.storage().display(),
                self.host()
            ),
        )
        .expect("write the registry's config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `docker-registry` ({e}); install Debian's docker-registry package (`.ci/run` does)")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.answers() {
            assert!(
                Instant::now() < deadline,
                "the registry did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect((self.ip, self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut reply = String::new();
        let _ = stream.read_to_string(&mut reply);
        // A registry that wants a login answers 401 once it is up.
        ["200", "401"].iter().any(|code| {
            reply.starts_with(&format!("HTTP/1.1 {code}"))
                || reply.starts_with(&format!("HTTP/1.0 {code}"))
        })
    }

    /// `IP:PORT`, as a reference names the registry.
    pub fn host(&self) -> String {
        match self.ip {
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
        }
    }

    /// Where the registry keeps what is pushed to it.
    pub fn storage(&self) -> PathBuf {
        self.root.path().join("storage")
    }

    /// The file holding the blob `digest` (`sha256:...`), manifests included.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stop the server, keeping its storage.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again on the same port, with the same storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for OciRegistry {
    fn drop(&mut self) {
        self.stop();
    }
}
