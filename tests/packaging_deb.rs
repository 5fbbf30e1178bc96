//! The two Debian packages built for real (`packaging/debian/build-deb.sh` with the binary
//! under test, into a temp dir) and read back with dpkg-deb: names, epoch, relations that
//! make the Go packages of the same names upgrade, the files of each side, conffiles,
//! the unit alias, and a clean lintian when it is installed. Skips with the reason
//! without dpkg-deb/fakeroot (CI on Debian has both).

use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn dpkg_deb(args: &[&str], deb: &Path) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `dpkg-deb --field DEB NAME`.
fn control(deb: &Path, name: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(name)
        .output()
        .expect("run dpkg-deb --field");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Paths (and symlink targets) in a package, as `./path` or `./path -> target`.
fn contents(deb: &Path) -> Vec<String> {
    dpkg_deb(&["--contents"], deb)
        .lines()
        .filter_map(|l| l.split_once("./").map(|(_, p)| format!("./{p}")))
        .collect()
}

#[test]
fn both_packages_build_with_the_go_layout() {
    if !(have("dpkg-deb") && have("fakeroot") && have("objdump") && have("strip")) {
        let ci = std::env::var_os("CI").is_some();
        assert!(!ci, "dpkg-deb, fakeroot and binutils are expected in CI");
        eprintln!("skipped: needs dpkg-deb, fakeroot and binutils");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = tempfile::tempdir().expect("tempdir");
    let out = Command::new("sh")
        .arg(root.join("packaging/debian/build-deb.sh"))
        .current_dir(root)
        .env("MAGLEV_BIN", env!("CARGO_BIN_EXE_maglev"))
        .env("CARGO_TARGET_DIR", target.path())
        .env("LINTIAN", if have("lintian") { "1" } else { "0" })
        .output()
        .expect("run build-deb.sh");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "build-deb.sh failed (lintian errors or warnings fail it):\n{log}"
    );

    let arch = String::from_utf8(
        Command::new("dpkg")
            .arg("--print-architecture")
            .output()
            .expect("dpkg")
            .stdout,
    )
    .expect("utf-8");
    let version = env!("CARGO_PKG_VERSION");
    let deb = |p: &str| {
        target
            .path()
            .join(format!("deb/{p}_{version}_{}.deb", arch.trim()))
    };
    let (client, daemon) = (deb("vpp-maglev"), deb("vpp-maglevd"));

    // Epoch 1: newer than any Go package of the same name.
    for d in [&client, &daemon] {
        assert_eq!(control(d, "Version"), format!("1:{version}"));
        assert_eq!(control(d, "Source"), "vpp-maglev");
    }
    assert_eq!(control(&daemon, "Package"), "vpp-maglevd");
    assert!(control(&daemon, "Depends").contains(&format!("vpp-maglev (= 1:{version})")));
    assert_eq!(control(&daemon, "Replaces"), "vpp-maglev (<< 1:0)");
    assert_eq!(control(&daemon, "Breaks"), "vpp-maglev (<< 1:0)");
    assert_eq!(control(&client, "Replaces"), "vpp-maglevd (<< 1:0)");
    assert_eq!(control(&client, "Breaks"), "vpp-maglevd (<< 1:0)");

    let c = contents(&client);
    for want in [
        "./usr/bin/maglev",
        "./usr/bin/maglevc -> maglev",
        "./usr/bin/maglevt -> maglev",
        "./usr/share/man/man1/maglevc.1.gz",
        "./usr/share/man/man1/maglevt.1.gz",
        "./usr/share/doc/vpp-maglev/dashboard.png",
    ] {
        assert!(
            c.iter().any(|l| l == want),
            "{want} not in vpp-maglev:\n{c:#?}"
        );
    }
    assert!(
        !c.iter().any(|l| l.contains("systemd")),
        "no units on jump hosts"
    );
    let d = contents(&daemon);
    for want in [
        "./usr/sbin/maglevd -> ../bin/maglev",
        "./lib/systemd/system/vpp-maglev.service",
        "./lib/systemd/system/vpp-maglevd.service -> vpp-maglev.service",
        "./etc/vpp-maglev/maglev.toml",
        "./etc/default/vpp-maglev",
    ] {
        assert!(
            d.iter().any(|l| l == want),
            "{want} not in vpp-maglevd:\n{d:#?}"
        );
    }
    assert!(
        !d.iter().any(|l| l == "./usr/bin/maglev"),
        "the binary is in vpp-maglev only"
    );
    // The web role: its unit, the name the unit starts, its man page.
    for want in [
        "./lib/systemd/system/vpp-maglev-frontend.service",
        "./usr/sbin/maglevd-frontend -> ../bin/maglev",
        "./usr/share/man/man8/maglevd-frontend.8.gz",
    ] {
        assert!(
            d.iter().any(|l| l == want),
            "{want} not in vpp-maglevd:\n{d:#?}"
        );
    }

    // Conffiles, and the postinst that names the import command for a Go YAML config.
    let info = tempfile::tempdir().expect("tempdir");
    let out = Command::new("dpkg-deb")
        .arg("--control")
        .arg(&daemon)
        .arg(info.path())
        .output()
        .expect("dpkg-deb --control");
    assert!(out.status.success());
    let conffiles = std::fs::read_to_string(info.path().join("conffiles")).expect("conffiles");
    assert_eq!(
        conffiles,
        "/etc/vpp-maglev/maglev.toml\n/etc/default/vpp-maglev\n"
    );
    let postinst = std::fs::read_to_string(info.path().join("postinst")).expect("postinst");
    assert!(postinst.contains("maglev config import $yaml -o /etc/vpp-maglev/maglev.toml"));
}
