//! What the installers ship, checked without building them (the builds
//! take minutes: `packaging/linux/build-deb.sh`, `packaging/windows/build.sh`
//! and `smoke.sh` run them): every file the `.deb` lists exists, the
//! desktop entry, icons and systemd units name the installed binary, the
//! NSIS installer installs per user, and the licence list the „Über“
//! dialog shows covers every crate of `Cargo.lock`.

use std::collections::BTreeSet;
use std::path::Path;

const BIN: &str = "ivoris-hubspot-sync";

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn manifest() -> toml::Table {
    read("Cargo.toml").parse().expect("Cargo.toml is TOML")
}

/// `[package.metadata.deb]`'s assets as (source, destination).
fn deb_assets() -> Vec<(String, String)> {
    let manifest = manifest();
    let assets = manifest["package"]["metadata"]["deb"]["assets"]
        .as_array()
        .expect("assets is a list")
        .clone();
    assets
        .iter()
        .map(|asset| {
            let cells = asset.as_array().expect("an asset is a list");
            (
                cells[0].as_str().expect("source").to_owned(),
                cells[1].as_str().expect("destination").to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_file_the_deb_lists_exists() {
    for (source, _) in deb_assets() {
        if source.starts_with("target/") {
            continue;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        match source.strip_suffix("*.txt") {
            Some(dir) => {
                let texts = std::fs::read_dir(root.join(dir))
                    .unwrap_or_else(|e| panic!("{dir}: {e}"))
                    .filter(|entry| {
                        entry
                            .as_ref()
                            .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "txt"))
                    })
                    .count();
                assert!(texts > 0, "{source} matches no file");
            }
            None => assert!(root.join(&source).is_file(), "{source} is missing"),
        }
    }
}

#[test]
fn the_deb_installs_the_binary_desktop_entry_icons_and_user_units() {
    let destinations: Vec<String> = deb_assets().into_iter().map(|(_, to)| to).collect();
    for wanted in [
        "usr/bin/".to_owned(),
        "usr/share/applications/".to_owned(),
        format!("usr/share/icons/hicolor/scalable/apps/{BIN}.svg"),
        format!("usr/share/icons/hicolor/48x48/apps/{BIN}.png"),
        format!("usr/share/icons/hicolor/256x256/apps/{BIN}.png"),
        "usr/lib/systemd/user/".to_owned(),
    ] {
        assert!(
            destinations.contains(&wanted),
            "{wanted} is not installed: {destinations:?}"
        );
    }
    let depends = manifest()["package"]["metadata"]["deb"]["depends"]
        .as_str()
        .expect("depends")
        .to_owned();
    // Opened at run time, so dpkg-shlibdeps cannot find them.
    for library in ["libxkbcommon0", "libwayland-client0", "libx11-6", "libegl1"] {
        assert!(depends.contains(library), "{library} in depends");
    }
}

#[test]
fn the_desktop_entry_starts_the_binary_with_its_icon() {
    let entry = read("packaging/linux/ivoris-hubspot-sync.desktop");
    assert!(entry.lines().any(|l| l == format!("Exec={BIN}")));
    assert!(entry.lines().any(|l| l == format!("Icon={BIN}")));
    // Matches the window's app id (eframe's app name) on X11 and Wayland.
    assert!(entry.lines().any(|l| l == format!("StartupWMClass={BIN}")));
}

#[test]
fn the_user_service_runs_the_installed_sync_and_the_timer_starts_it() {
    let service = read("packaging/linux/ivoris-hubspot-sync.service");
    assert!(
        service
            .lines()
            .any(|l| l == format!("ExecStart=/usr/bin/{BIN} sync"))
    );
    assert!(service.lines().any(|l| l == "Type=oneshot"));
    let timer = read("packaging/linux/ivoris-hubspot-sync.timer");
    assert!(timer.lines().any(|l| l.starts_with("OnCalendar=")));
    assert!(timer.lines().any(|l| l == "WantedBy=timers.target"));
}

#[test]
fn the_windows_installer_needs_no_admin_rights_and_keeps_the_data() {
    let script = read("packaging/windows/installer.nsi");
    assert!(script.contains("RequestExecutionLevel user"));
    assert!(script.contains(r#"InstallDir "$LOCALAPPDATA\Programs\${APP_ID}""#));
    // Deleting the data is an uninstaller section that is off by default.
    assert!(script.contains(r#"Section /o "un.$(SecData)""#));
    assert!(script.contains("schtasks /Create"));
}

#[test]
fn the_release_binary_ships_without_debug_info() {
    let manifest = manifest();
    let release = &manifest["profile"]["release"];
    assert_eq!(release["debug"].as_bool(), Some(false));
    assert_eq!(release["strip"].as_str(), Some("symbols"));
}

/// `(name, version)` of every package in `Cargo.lock` but this one.
fn locked_packages() -> BTreeSet<(String, String)> {
    let lock: toml::Table = read("Cargo.lock").parse().expect("Cargo.lock is TOML");
    lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            (
                package["name"].as_str().expect("name").to_owned(),
                package["version"].as_str().expect("version").to_owned(),
            )
        })
        .filter(|(name, _)| name != BIN)
        .collect()
}

#[test]
fn the_licence_list_covers_every_crate_in_cargo_lock() {
    let listed: BTreeSet<(String, String)> = read("assets/licenses/crates.tsv")
        .lines()
        .skip(1)
        .map(|line| {
            let mut cells = line.split('\t');
            (
                cells.next().unwrap_or_default().to_owned(),
                cells.next().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let locked = locked_packages();
    let missing: Vec<_> = locked.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&locked).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "assets/licenses/crates.tsv is out of date; run packaging/licenses.sh \
         (missing: {missing:?}, no longer used: {stale:?})"
    );
}
