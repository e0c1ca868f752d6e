//! A private, throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary
//! directory, a free loopback port, a unix socket in that directory, stopped and deleted on
//! drop. `initdb` refuses to run as root, so as root the cluster runs as the `postgres` user
//! (or `nobody`), which is given the directory. `PgBouncer` puts a private pooler in
//! transaction mode in front of one, the same way.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PrivateCluster {
    directory: tempfile::TempDir,
    port: u16,
    run_as: Option<String>,
    /// Killed on purpose (`kill`): nothing is left to stop.
    killed: bool,
}

/// Server settings for a cluster; `durable: false` turns fsync off, for tests only.
#[derive(Clone, Copy, Debug)]
pub struct ClusterOptions {
    pub durable: bool,
    pub max_connections: u32,
    /// Commits wait for this standby (its `application_name`) to have the commit: a
    /// synchronous standby, with `synchronous_commit = on` whatever `durable` says.
    pub synchronous_standby: Option<&'static str>,
}

impl Default for ClusterOptions {
    fn default() -> ClusterOptions {
        ClusterOptions { durable: false, max_connections: 200, synchronous_standby: None }
    }
}

impl PrivateCluster {
    pub fn start(options: ClusterOptions) -> anyhow::Result<PrivateCluster> {
        let (directory, run_as) = PrivateCluster::make_directory()?;
        let data = directory.path().join("data");
        run(
            Command::new("initdb").arg("-D").arg(&data).args(["-U", "tally", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"]),
            run_as.as_deref(),
        )?;
        PrivateCluster::serve(directory, run_as, options)
    }

    /// A streaming standby of this cluster, copied from it now (`pg_basebackup`), which names
    /// itself `name` to the primary (for `synchronous_standby`) and runs read-only until
    /// `promote`.
    pub fn start_standby(&self, name: &str, options: ClusterOptions) -> anyhow::Result<PrivateCluster> {
        let (directory, run_as) = PrivateCluster::make_directory()?;
        let source = format!("{} application_name={name}", self.url());
        run(
            Command::new("pg_basebackup").arg("-D").arg(directory.path().join("data")).args(["-d", &source, "-R", "-X", "stream"]),
            run_as.as_deref(),
        )?;
        PrivateCluster::serve(directory, run_as, options)
    }

    fn make_directory() -> anyhow::Result<(tempfile::TempDir, Option<String>)> {
        let directory = tempfile::Builder::new().prefix("tally-pg-").tempdir()?;
        let run_as = unprivileged_user();
        if let Some(user) = &run_as {
            run(Command::new("chown").arg("-R").arg(format!("{user}:")).arg(directory.path()), None)?;
        }
        Ok((directory, run_as))
    }

    /// Starts the server on the data directory in `directory`.
    fn serve(directory: tempfile::TempDir, run_as: Option<String>, options: ClusterOptions) -> anyhow::Result<PrivateCluster> {
        let data = directory.path().join("data");
        let synchronous_commit = options.durable || options.synchronous_standby.is_some();
        // A port that was free a moment ago may be taken by the time the server binds it;
        // try a few.
        let mut last_error = None;
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut settings = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync={} -c synchronous_commit={} -c max_connections={} -c shared_buffers=256MB",
                directory.path().display(),
                if options.durable { "on" } else { "off" },
                if synchronous_commit { "on" } else { "off" },
                options.max_connections,
            );
            if let Some(standby) = options.synchronous_standby {
                settings.push_str(&format!(" -c synchronous_standby_names={standby}"));
            }
            let log = directory.path().join("server.log");
            let started = run(
                Command::new("pg_ctl").arg("-D").arg(&data).arg("-l").arg(&log).args(["-w", "-t", "60", "-o", &settings, "start"]),
                run_as.as_deref(),
            );
            match started {
                Ok(()) => return Ok(PrivateCluster { directory, port, run_as, killed: false }),
                Err(error) => last_error = Some(error.context(std::fs::read_to_string(&log).unwrap_or_default())),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// Kills the server and every process of it with SIGKILL at once, as if its machine
    /// died: nothing is flushed or shut down.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        let pidfile = std::fs::read_to_string(self.data().join("postmaster.pid"))?;
        let postmaster = pidfile.lines().next().unwrap_or_default().trim().to_owned();
        let children = Command::new("pgrep").args(["-P", &postmaster]).output()?;
        let mut pids = vec![postmaster];
        pids.extend(String::from_utf8_lossy(&children.stdout).split_whitespace().map(str::to_owned));
        run(Command::new("kill").arg("-KILL").args(&pids), None)?;
        self.killed = true;
        Ok(())
    }

    /// Makes a standby a primary that takes writes (`pg_ctl promote`, waiting until it does).
    pub fn promote(&self) -> anyhow::Result<()> {
        run(Command::new("pg_ctl").arg("-D").arg(self.data()).args(["-w", "-t", "60", "promote"]), self.run_as.as_deref())
    }

    /// A connection string for the cluster's `postgres` database, over the unix socket.
    pub fn url(&self) -> String {
        format!("host={} port={} user=tally dbname=postgres", self.directory.path().display(), self.port)
    }

    /// The same database over TCP loopback, as a `postgres://` URL (for tools like pgbench).
    pub fn tcp_url(&self) -> String {
        format!("postgres://tally@127.0.0.1:{}/postgres", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn directory(&self) -> &Path {
        self.directory.path()
    }

    fn data(&self) -> PathBuf {
        self.directory.path().join("data")
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        let stopped =
            run(Command::new("pg_ctl").arg("-D").arg(self.data()).args(["-m", "immediate", "-w", "stop"]), self.run_as.as_deref());
        if let Err(error) = stopped {
            eprintln!("could not stop the private PostgreSQL cluster: {error:#}");
        }
    }
}

/// A private PgBouncer in transaction pooling mode in front of a cluster, on a free loopback
/// port, with fewer server connections than its clients will open, so that clients share
/// server connections between transactions (what breaks session state). Stopped on drop.
pub struct PgBouncer {
    directory: tempfile::TempDir,
    port: u16,
}

/// Server connections per database and user: fewer than a node opens (a writer, reads, keys).
const POOLER_SERVER_CONNECTIONS: u32 = 3;

impl PgBouncer {
    pub fn start(cluster: &PrivateCluster) -> anyhow::Result<PgBouncer> {
        let binary = ["pgbouncer", "/usr/sbin/pgbouncer"]
            .into_iter()
            .find(|candidate| Command::new(candidate).arg("--version").output().is_ok_and(|o| o.status.success()))
            .ok_or_else(|| anyhow::anyhow!("pgbouncer not found: install it (Debian and Ubuntu: apt-get install pgbouncer)"))?;
        let (directory, run_as) = PrivateCluster::make_directory()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let path = |name: &str| directory.path().join(name).display().to_string();
        let config = format!(
            "[databases]\npostgres = host={} port={} user=tally\n\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n\
             unix_socket_dir =\nauth_type = trust\nauth_file = {}\npool_mode = transaction\ndefault_pool_size = {POOLER_SERVER_CONNECTIONS}\n\
             max_client_conn = 200\nlogfile = {}\npidfile = {}\n",
            cluster.directory().display(),
            cluster.port(),
            path("users.txt"),
            path("pgbouncer.log"),
            path("pgbouncer.pid"),
        );
        std::fs::write(directory.path().join("pgbouncer.ini"), config)?;
        std::fs::write(directory.path().join("users.txt"), "\"tally\" \"\"\n")?;
        if let Some(user) = &run_as {
            run(Command::new("chown").arg("-R").arg(format!("{user}:")).arg(directory.path()), None)?;
        }
        run(Command::new(binary).arg("-d").arg(path("pgbouncer.ini")), run_as.as_deref())?;
        let log = path("pgbouncer.log");
        let bouncer = PgBouncer { directory, port };
        // `-d` returns once it forked, perhaps before it listens.
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(bouncer);
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        anyhow::bail!("pgbouncer did not listen on port {port}: {}", std::fs::read_to_string(log).unwrap_or_default())
    }

    /// A connection string for the cluster's `postgres` database through the pooler.
    pub fn url(&self) -> String {
        format!("host=127.0.0.1 port={} user=tally dbname=postgres", self.port)
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.directory.path().join("pgbouncer.pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

/// As root, the user to run the server as; otherwise the current user runs it.
fn unprivileged_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    let exists = |user: &str| Command::new("id").arg(user).output().is_ok_and(|o| o.status.success());
    ["postgres", "nobody"].into_iter().find(|user| exists(user)).map(str::to_owned)
}

fn run(command: &mut Command, run_as: Option<&str>) -> anyhow::Result<()> {
    let mut command = match run_as {
        None => std::mem::replace(command, Command::new("true")),
        Some(user) => {
            let mut wrapped = Command::new("runuser");
            wrapped.args(["-u", user, "--"]).arg(command.get_program()).args(command.get_args());
            wrapped
        }
    };
    let output = command.output().map_err(|e| anyhow::anyhow!("cannot run {:?}: {e}", command.get_program()))?;
    if !output.status.success() {
        anyhow::bail!("{:?} failed: {}{}", command, String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
    Ok(())
}
