//! The Debian packages installed for real, in a throwaway root: an upgrade from stand-ins of
//! the Go tool's `vpp-maglevd` and `vpp-maglev` packages, and a fresh install.
//!
//! The throwaway root is an overlay of this machine's `/` with a tmpfs on top, mounted in a
//! private mount namespace (`unshare --mount`) that lives as long as one `sleep` process;
//! commands run in it through `nsenter` + `chroot`. dpkg, apt and adduser write only to the
//! tmpfs, and everything vanishes when the namespace's last process exits, so the host's
//! package database, users and /etc are never touched. The packages are built by
//! `packaging/debian/build-deb.sh` from the binary under test.
//!
//! The Go packages are stand-ins built here with dpkg-deb, laid out as docs/migrating.md
//! assumes (their exact file lists are not known): version 0.9.0-1 (no epoch), separate
//! programs `/usr/sbin/maglevd` and `/usr/bin/maglevc`, the YAML config
//! `/etc/vpp-maglev/maglev.yaml` and `/etc/default/vpp-maglev` as conffiles, the unit
//! `vpp-maglevd.service`, and a postinst that makes the `maglevd` system user. One file
//! moves each way between the two packages (the daemon package holds `maglevc`, the client
//! package holds `maglevd-frontend`), so both Replaces/Breaks pairs are exercised.
//!
//! Needs root, unshare/nsenter/chroot (util-linux, coreutils), dpkg-deb, fakeroot, binutils
//! and overlayfs; without them each test prints why it skipped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;

const GO_VERSION: &str = "0.9.0-1";
const YAML: &str = "\
maglev:
  vpp:
    lb:
      ipv4-src-address: 192.0.2.254
  healthchecks:
    http: { type: http, port: 80, params: { path: /.well-known/ipng/healthz },
            interval: 2s, timeout: 3s, rise: 2, fall: 3 }
  backends:
    nginx0-ams: { address: 192.0.2.10, healthcheck: http }
  frontends:
    web: { address: 192.0.2.1, protocol: tcp, port: 80,
           pools: [ { name: primary, backends: { nginx0-ams: {} } } ] }
";
const IMPORT: &str =
    "maglev config import /etc/vpp-maglev/maglev.yaml -o /etc/vpp-maglev/maglev.toml --force";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Why this machine cannot run these tests, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if !is_root() {
        return Some("needs root (mounts, chroot, dpkg)".into());
    }
    for tool in [
        "unshare", "nsenter", "chroot", "dpkg", "dpkg-deb", "fakeroot", "objdump", "strip",
    ] {
        if !have(tool) {
            return Some(format!("needs {tool}"));
        }
    }
    None
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Our two packages, built once for all tests of this binary into the target's temp dir:
/// (vpp-maglev, vpp-maglevd).
fn our_debs() -> &'static (PathBuf, PathBuf) {
    static DEBS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DEBS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("packaging_upgrade");
        let out = Command::new("sh")
            .arg(root.join("packaging/debian/build-deb.sh"))
            .current_dir(root)
            .env("MAGLEV_BIN", env!("CARGO_BIN_EXE_maglev"))
            .env("CARGO_TARGET_DIR", &target)
            // packaging_deb.rs runs lintian on the same script's output.
            .env("LINTIAN", "0")
            .env("DEB_COMPRESSION", "gzip")
            .output()
            .expect("run build-deb.sh");
        assert!(out.status.success(), "build-deb.sh failed:\n{}", text(&out));
        let arch = Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .expect("dpkg --print-architecture");
        let arch = String::from_utf8_lossy(&arch.stdout).trim().to_string();
        let version = env!("CARGO_PKG_VERSION");
        let deb = |p: &str| target.join(format!("deb/{p}_{version}_{arch}.deb"));
        (deb("vpp-maglev"), deb("vpp-maglevd"))
    })
}

/// One file of a stand-in package: path, mode, content.
type File<'a> = (&'a str, u32, &'a str);

/// Builds a stand-in Go package into `dir` and returns the .deb.
fn go_package(
    dir: &Path,
    name: &str,
    depends: &str,
    files: &[File],
    conffiles: &[&str],
    postinst: Option<&str>,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let stage = dir.join(name);
    let write = |rel: &str, mode: u32, body: &str| {
        let p = stage.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, body).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    for (path, mode, body) in files {
        write(path, *mode, body);
    }
    let arch = Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .expect("dpkg");
    let arch = String::from_utf8_lossy(&arch.stdout).trim().to_string();
    let mut control = format!(
        "Package: {name}\nVersion: {GO_VERSION}\nArchitecture: {arch}\n\
         Maintainer: Go stand-in <go@example.org>\n"
    );
    if !depends.is_empty() {
        control.push_str(&format!("Depends: {depends}\n"));
    }
    control.push_str(&format!("Description: stand-in for the Go {name}\n"));
    write("DEBIAN/control", 0o644, &control);
    if !conffiles.is_empty() {
        write("DEBIAN/conffiles", 0o644, &(conffiles.join("\n") + "\n"));
    }
    if let Some(script) = postinst {
        write("DEBIAN/postinst", 0o755, script);
    }
    let deb = dir.join(format!("{name}_{GO_VERSION}.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "-Zgzip", "--build"])
        .arg(&stage)
        .arg(&deb)
        .output()
        .expect("dpkg-deb --build");
    assert!(out.status.success(), "dpkg-deb: {}", text(&out));
    deb
}

/// The Go packages' stand-ins: (vpp-maglev, vpp-maglevd).
fn go_debs(dir: &Path) -> (PathBuf, PathBuf) {
    let daemon = go_package(
        dir,
        "vpp-maglevd",
        "adduser",
        &[
            ("/usr/sbin/maglevd", 0o755, "#!/bin/sh\necho go maglevd\n"),
            // Moves to our vpp-maglev (its Replaces/Breaks: vpp-maglevd (<< 1:0)).
            ("/usr/bin/maglevc", 0o755, "#!/bin/sh\necho go maglevc\n"),
            ("/etc/vpp-maglev/maglev.yaml", 0o644, YAML),
            (
                "/etc/default/vpp-maglev",
                0o644,
                "# Go maglevd flags\nARGS=\"\"\n",
            ),
            (
                "/lib/systemd/system/vpp-maglevd.service",
                0o644,
                "[Unit]\nDescription=Go maglevd\n[Service]\nUser=maglevd\n\
                 ExecStart=/usr/sbin/maglevd\n[Install]\nWantedBy=multi-user.target\n",
            ),
        ],
        &["/etc/vpp-maglev/maglev.yaml", "/etc/default/vpp-maglev"],
        Some(
            "#!/bin/sh\nset -e\nif [ \"$1\" = configure ] && ! getent passwd maglevd >/dev/null; then\n\
             \tadduser --system --group --no-create-home --home /nonexistent maglevd >/dev/null 2>&1\n\
             fi\n",
        ),
    );
    let client = go_package(
        dir,
        "vpp-maglev",
        "",
        &[
            // Moves to our vpp-maglevd (its Replaces/Breaks: vpp-maglev (<< 1:0)).
            (
                "/usr/sbin/maglevd-frontend",
                0o755,
                "#!/bin/sh\necho go frontend\n",
            ),
            ("/usr/bin/maglevt", 0o755, "#!/bin/sh\necho go maglevt\n"),
        ],
        &[],
        None,
    );
    (client, daemon)
}

/// A throwaway root: an overlay of `/` on a tmpfs in a private mount namespace.
struct Sandbox {
    holder: Child,
    /// The process whose mount namespace holds the overlay.
    pid: u32,
    /// The overlay's mount point (only mounted inside that namespace).
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sandbox {
    /// Err(reason) when this machine cannot make one (no overlayfs over `/`, no namespaces).
    fn new() -> Result<Sandbox, String> {
        use std::io::BufRead;
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let base = dir.path().to_path_buf();
        // The namespace lives as long as this script's final `sleep` (killed on drop; the
        // timeout bounds a leak if the test process dies without dropping).
        let script = r#"set -eu
b=$1
mount -t tmpfs -o mode=0755 maglev-sandbox "$b"
mkdir "$b/upper" "$b/work" "$b/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$b/upper,workdir=$b/work" "$b/root"
mount --rbind /dev "$b/root/dev"
mount --rbind /proc "$b/root/proc"
mount --rbind /sys "$b/root/sys"
mount -t tmpfs -o mode=0755 run "$b/root/run"
mount -t tmpfs -o mode=1777 tmp "$b/root/tmp"
mkdir "$b/root/tmp/debs"
echo "ready $$"
exec sleep 600
"#;
        let mut holder = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "--fork",
                "--kill-child",
            ])
            .args(["sh", "-c", script, "sandbox"])
            .arg(&base)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare: {e}"))?;
        let stdout = holder.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let pid = line
            .strip_prefix("ready ")
            .and_then(|p| p.trim().parse::<u32>().ok());
        match pid {
            Some(pid) => Ok(Sandbox {
                holder,
                pid,
                root: base.join("root"),
                _dir: dir,
            }),
            None => {
                let _ = holder.kill();
                let out = holder.wait_with_output().map_err(|e| e.to_string())?;
                Err(format!(
                    "cannot mount an overlay of / in a mount namespace: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        }
    }

    fn nsenter(&self) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--mount=/proc/{}/ns/mnt", self.pid))
            .arg("--");
        c
    }

    /// Copies a host file into the sandbox's /tmp/debs; returns its path inside.
    fn put(&self, host: &Path) -> String {
        let name = host.file_name().expect("file name").to_string_lossy();
        let out = self
            .nsenter()
            .arg("cp")
            .arg(host)
            .arg(self.root.join("tmp/debs").join(&*name))
            .output()
            .expect("nsenter cp");
        assert!(out.status.success(), "copy into sandbox: {}", text(&out));
        format!("/tmp/debs/{name}")
    }

    /// Runs `sh -c cmd` chrooted in the sandbox with a clean environment.
    fn sh(&self, cmd: &str) -> Output {
        self.nsenter()
            .arg("chroot")
            .arg(&self.root)
            .args([
                "env",
                "-i",
                "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
                "LC_ALL=C",
            ])
            .args(["HOME=/root", "DEBIAN_FRONTEND=noninteractive", "NO_COLOR=1"])
            .args(["sh", "-c", cmd])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter chroot")
    }

    /// Runs `cmd`, asserts it succeeded, returns stdout + stderr.
    fn ok(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        assert!(out.status.success(), "`{cmd}` failed:\n{}", text(&out));
        text(&out)
    }

    fn exists(&self, path: &str) -> bool {
        self.sh(&format!("test -e {path} || test -L {path}"))
            .status
            .success()
    }

    fn read(&self, path: &str) -> String {
        self.ok(&format!("cat {path}"))
    }

    /// `dpkg-query` status word (`installed`, `config-files`, `not-installed`) and version.
    fn status(&self, pkg: &str) -> String {
        let out = self.sh(&format!(
            "dpkg-query -W -f='${{db:Status-Status}} ${{Version}}' {pkg} 2>/dev/null"
        ));
        let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if s.is_empty() {
            "not-installed".into()
        } else {
            s
        }
    }

    fn owner(&self, path: &str) -> String {
        let out = self.ok(&format!("dpkg -S {path}"));
        out.split(':').next().unwrap_or("").trim().to_string()
    }

    /// `getent passwd NAME` or "".
    fn user(&self, name: &str) -> String {
        String::from_utf8_lossy(&self.sh(&format!("getent passwd {name}")).stdout)
            .trim()
            .to_string()
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The namespace and its tmpfs go with the last process in it.
        let _ = Command::new("kill")
            .args(["-KILL", &self.pid.to_string()])
            .status();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A sandbox, or None after printing why there can be none here.
fn sandbox(test: &str) -> Option<Sandbox> {
    if let Some(why) = missing_prerequisite() {
        eprintln!("{test} skipped: {why}");
        return None;
    }
    match Sandbox::new() {
        Ok(s) => Some(s),
        Err(why) => {
            eprintln!("{test} skipped: {why}");
            None
        }
    }
}

/// The state after the Go packages were installed and used: the maglevd user exists, the
/// operator edited both conffiles and enabled the unit.
fn install_go_packages(sb: &Sandbox, dir: &Path) -> String {
    let (go_client, go_daemon) = go_debs(dir);
    let (gc, gd) = (sb.put(&go_client), sb.put(&go_daemon));
    sb.ok(&format!("dpkg -i {gd} {gc}"));
    assert_eq!(sb.status("vpp-maglevd"), format!("installed {GO_VERSION}"));
    let user = sb.user("maglevd");
    assert!(!user.is_empty(), "the Go postinst made the maglevd user");
    sb.ok("echo '# operator: site ams' >>/etc/vpp-maglev/maglev.yaml");
    sb.ok("echo 'MAGLEV_LOG_LEVEL=debug' >>/etc/default/vpp-maglev");
    // What `systemctl enable vpp-maglevd` left behind.
    sb.ok(
        "mkdir -p /etc/systemd/system/multi-user.target.wants && ln -s \
         /lib/systemd/system/vpp-maglevd.service \
         /etc/systemd/system/multi-user.target.wants/vpp-maglevd.service",
    );
    user
}

/// What an upgrade from the Go packages must leave, whichever tool ran it.
fn assert_upgraded(sb: &Sandbox, go_user: &str, log: &str) {
    let ours = format!("installed 1:{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sb.status("vpp-maglev"), ours, "{log}");
    assert_eq!(sb.status("vpp-maglevd"), ours, "{log}");

    // Replaces/Breaks: the files that changed package have their new owner and content.
    assert_eq!(sb.owner("/usr/bin/maglevc"), "vpp-maglev");
    assert_eq!(sb.owner("/usr/sbin/maglevd-frontend"), "vpp-maglevd");
    assert_eq!(sb.ok("readlink /usr/bin/maglevc").trim(), "maglev");
    assert_eq!(sb.ok("readlink /usr/sbin/maglevd").trim(), "../bin/maglev");

    // The Go YAML (an obsolete conffile now) is left as the operator had it.
    assert_eq!(
        sb.read("/etc/vpp-maglev/maglev.yaml"),
        format!("{YAML}# operator: site ams\n")
    );
    let conffiles = sb.ok("dpkg-query -W -f='${Conffiles}' vpp-maglevd");
    assert!(
        conffiles
            .lines()
            .any(|l| l.contains("/etc/vpp-maglev/maglev.yaml") && l.ends_with("obsolete")),
        "the YAML stays registered as an obsolete conffile (purge removes it):\n{conffiles}"
    );
    // The operator's edited conffile is kept (--force-confold, as unattended upgrades do),
    // ours beside it as .dpkg-dist.
    assert_eq!(
        sb.read("/etc/default/vpp-maglev"),
        "# Go maglevd flags\nARGS=\"\"\nMAGLEV_LOG_LEVEL=debug\n"
    );
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/vpp-maglev.default"),
    )
    .expect("vpp-maglev.default");
    assert_eq!(sb.read("/etc/default/vpp-maglev.dpkg-dist"), shipped);
    assert!(sb.exists("/etc/vpp-maglev/maglev.toml"));

    // The postinst names the command that converts the YAML (apt runs dpkg on a pty: \r\n).
    assert!(
        log.lines().any(|l| l.trim_end() == format!("  {IMPORT}")),
        "postinst message with the import command missing:\n{log:?}"
    );

    // The user the Go package made is still there, unchanged.
    assert_eq!(sb.user("maglevd"), go_user);

    // The unit, its alias in place of the Go unit, and the operator's enablement link
    // now reaching our unit.
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/systemd/vpp-maglev.service"),
    )
    .expect("vpp-maglev.service");
    assert_eq!(sb.read("/lib/systemd/system/vpp-maglev.service"), unit);
    assert_eq!(
        sb.ok("readlink /lib/systemd/system/vpp-maglevd.service")
            .trim(),
        "vpp-maglev.service"
    );
    assert_eq!(
        sb.ok("readlink -f /etc/systemd/system/multi-user.target.wants/vpp-maglevd.service"),
        sb.ok("readlink -f /lib/systemd/system/vpp-maglev.service"),
    );
}

/// The installed binary runs under each of its names.
fn assert_runs(sb: &Sandbox) {
    let v = sb.ok("maglevd --version");
    assert!(
        v.contains(env!("CARGO_PKG_VERSION")),
        "maglevd --version: {v}"
    );
    let help = sb.ok("maglevc --help");
    assert!(
        help.to_lowercase().contains("usage"),
        "maglevc --help: {help}"
    );
    sb.ok("maglevt --help");
}

#[test]
fn apt_upgrades_the_go_packages_then_remove_and_purge() {
    let Some(sb) = sandbox("apt_upgrades_the_go_packages_then_remove_and_purge") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let go_user = install_go_packages(&sb, dir.path());
    let (client, daemon) = our_debs();
    let (c, d) = (sb.put(client), sb.put(daemon));

    // The command docs/migrating.md gives; apt deconfigures the Go vpp-maglevd that the new
    // vpp-maglev Breaks while both are replaced. Offline: the dependencies are installed.
    let out = sb.sh(&format!(
        "apt-get install -y --no-install-recommends -o Dpkg::Options::=--force-confold {c} {d}"
    ));
    let log = text(&out);
    assert!(out.status.success(), "apt-get install failed:\n{log}");
    assert_upgraded(&sb, &go_user, &log);
    assert_runs(&sb);

    // The printed command converts the Go config, and the result validates, read as the
    // daemon's own user.
    sb.ok(IMPORT);
    let toml = sb.read("/etc/vpp-maglev/maglev.toml");
    assert!(toml.contains("[frontends.web]"), "{toml}");
    sb.ok("runuser -u maglevd -- maglevd --check");

    // remove: programs and units go, conffiles (ours and the Go YAML) and the user stay.
    sb.ok("dpkg --remove vpp-maglevd vpp-maglev");
    assert!(sb.status("vpp-maglevd").starts_with("config-files"));
    assert_eq!(sb.status("vpp-maglev"), "not-installed");
    for gone in [
        "/usr/bin/maglev",
        "/usr/bin/maglevc",
        "/usr/sbin/maglevd",
        "/lib/systemd/system/vpp-maglev.service",
        "/lib/systemd/system/vpp-maglevd.service",
    ] {
        assert!(!sb.exists(gone), "{gone} left after remove");
    }
    for kept in [
        "/etc/vpp-maglev/maglev.toml",
        "/etc/vpp-maglev/maglev.yaml",
        "/etc/default/vpp-maglev",
    ] {
        assert!(sb.exists(kept), "{kept} removed by remove");
    }
    assert_eq!(sb.user("maglevd"), go_user);

    // purge: every conffile goes (the obsolete YAML too) with /etc/vpp-maglev; the user is
    // kept, as postrm documents (its uid may own files elsewhere).
    sb.ok("dpkg --purge vpp-maglevd");
    assert_eq!(sb.status("vpp-maglevd"), "not-installed");
    for gone in [
        "/etc/vpp-maglev",
        "/etc/default/vpp-maglev",
        "/etc/default/vpp-maglev.dpkg-dist",
    ] {
        assert!(!sb.exists(gone), "{gone} left after purge");
    }
    assert_eq!(sb.user("maglevd"), go_user);
}

#[test]
fn dpkg_upgrades_the_go_packages_with_auto_deconfigure() {
    let Some(sb) = sandbox("dpkg_upgrades_the_go_packages_with_auto_deconfigure") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let go_user = install_go_packages(&sb, dir.path());
    let (client, daemon) = our_debs();
    let (c, d) = (sb.put(client), sb.put(daemon));

    // Plain `dpkg -i` refuses: each new package Breaks the other's Go version, which dpkg
    // will not deconfigure unasked (docs/migrating.md says so). Nothing is changed.
    let out = sb.sh(&format!("dpkg -i --force-confold {c} {d}"));
    assert!(!out.status.success(), "plain dpkg -i: {}", text(&out));
    assert!(text(&out).contains("--auto-deconfigure"), "{}", text(&out));
    assert_eq!(sb.status("vpp-maglevd"), format!("installed {GO_VERSION}"));
    assert_eq!(sb.status("vpp-maglev"), format!("installed {GO_VERSION}"));

    let out = sb.sh(&format!(
        "dpkg -i --auto-deconfigure --force-confold {c} {d}"
    ));
    let log = text(&out);
    assert!(
        out.status.success(),
        "dpkg -i --auto-deconfigure failed:\n{log}"
    );
    assert_upgraded(&sb, &go_user, &log);
    assert_runs(&sb);
}

#[test]
fn fresh_install_makes_the_user_and_names_no_yaml() {
    let Some(sb) = sandbox("fresh_install_makes_the_user_and_names_no_yaml") else {
        return;
    };
    if !sb.user("maglevd").is_empty() || sb.exists("/etc/vpp-maglev") {
        eprintln!(
            "fresh install skipped: this machine already has a maglevd user or /etc/vpp-maglev"
        );
        return;
    }
    let (client, daemon) = our_debs();
    let (c, d) = (sb.put(client), sb.put(daemon));
    let out = sb.sh(&format!("dpkg -i {c} {d}"));
    let log = text(&out);
    assert!(out.status.success(), "dpkg -i failed:\n{log}");
    let ours = format!("installed 1:{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sb.status("vpp-maglev"), ours);
    assert_eq!(sb.status("vpp-maglevd"), ours);
    assert!(
        !log.contains("config import"),
        "no YAML, no message:\n{log}"
    );

    // A system user with no login and no home.
    let user = sb.user("maglevd");
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields.len(), 7, "{user}");
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid < 1000, "a system uid: {user}");
    assert_eq!(fields[5], "/nonexistent");
    assert!(fields[6].ends_with("nologin"), "{user}");
    assert!(!sb.exists("/nonexistent"));
    assert!(!sb.ok("getent group maglevd").trim().is_empty());

    // Conffiles as shipped, units, the alias.
    let conffiles = sb.ok("dpkg-query -W -f='${Conffiles}' vpp-maglevd");
    for f in ["/etc/vpp-maglev/maglev.toml", "/etc/default/vpp-maglev"] {
        assert!(conffiles.contains(f), "{f} not a conffile:\n{conffiles}");
    }
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/maglev.toml"),
    )
    .expect("maglev.toml");
    assert_eq!(sb.read("/etc/vpp-maglev/maglev.toml"), example);
    assert!(sb.exists("/lib/systemd/system/vpp-maglev-frontend.service"));
    assert_eq!(
        sb.ok("readlink /lib/systemd/system/vpp-maglevd.service")
            .trim(),
        "vpp-maglev.service"
    );
    assert_runs(&sb);
    sb.ok("runuser -u maglevd -- maglevd --check");

    // Reinstalling the same packages keeps an edited conffile without asking.
    sb.ok("echo 'MAGLEV_LOG_LEVEL=debug' >>/etc/default/vpp-maglev");
    sb.ok(&format!("dpkg -i {c} {d}"));
    assert!(
        sb.read("/etc/default/vpp-maglev")
            .ends_with("MAGLEV_LOG_LEVEL=debug\n")
    );

    sb.ok("dpkg --purge vpp-maglevd vpp-maglev");
    assert!(!sb.exists("/etc/vpp-maglev"));
    assert!(!sb.exists("/usr/bin/maglev"));
    assert_eq!(sb.user("maglevd"), user, "the user is kept on purge");
}
