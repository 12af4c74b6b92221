//! `mapping export` / `import` / `versions` / `restore` as the real binary
//! in a temp dir: files for German Excel, an all-or-nothing import, and
//! exit codes (0 done, 1 nothing imported, 2 usage).

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ivoris-hubspot-sync");

fn run(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .env("XDG_CONFIG_HOME", data)
        .env("HOME", data)
        .env("USER", "praxis-admin")
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn export_writes_every_table_for_german_excel_and_a_zip() {
    let data = tempfile::tempdir().expect("dir");
    let dir = data.path().join("export");
    let out = run(
        data.path(),
        &["mapping", "export", dir.to_str().expect("utf-8")],
    );
    assert!(out.status.success(), "{out:?}");
    for stem in [
        "appointment_types",
        "appointment_states",
        "stages",
        "treatment_categories",
        "entry_types",
        "contact_fields",
    ] {
        let bytes = std::fs::read(dir.join(format!("{stem}.csv"))).expect(stem);
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "{stem}: BOM");
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.contains(";"), "{stem}");
        assert!(text.contains("\r\n"), "{stem}");
    }
    let categories =
        std::fs::read_to_string(dir.join("treatment_categories.csv")).expect("categories");
    assert!(
        categories.contains("GOZ;2050-2120;Füllung\r\n"),
        "{categories}"
    );
    assert!(dir.join("zuordnung.zip").exists());
}

#[test]
fn import_of_an_edited_table_saves_a_version_and_the_zip_round_trips() {
    let data = tempfile::tempdir().expect("dir");
    let dir = data.path().join("export");
    let dir_text = dir.to_str().expect("utf-8");
    assert!(
        run(data.path(), &["mapping", "export", dir_text])
            .status
            .success()
    );
    // Staff edit the file in Excel and save it as Windows-1252 with commas.
    let file = data.path().join("Behandlungskategorien.csv");
    std::fs::write(
        &file,
        b"Katalog,Muster,Kategorie\r\nGOZ,9000-9170,Implantologie\r\nGOZ,2050-2120,F\xfcllung\r\n",
    )
    .expect("write");
    let file_text = file.to_str().expect("utf-8");

    let dry = run(data.path(), &["mapping", "import", file_text, "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    assert!(stdout(&dry).contains("Windows-1252"), "{}", stdout(&dry));
    let versions = run(data.path(), &["mapping", "versions"]);
    assert!(stdout(&versions).contains("Noch keine gespeicherte Version"));

    let saved = run(
        data.path(),
        &[
            "mapping",
            "import",
            file_text,
            "-c",
            "Nur Implantate und Füllungen",
        ],
    );
    assert_eq!(saved.status.code(), Some(0), "{saved:?}");
    assert!(stdout(&saved).contains("Version 1"), "{}", stdout(&saved));
    let versions = stdout(&run(data.path(), &["mapping", "versions"]));
    assert!(versions.contains("praxis-admin"), "{versions}");
    assert!(
        versions.contains("Nur Implantate und Füllungen"),
        "{versions}"
    );
    assert!(
        !versions.contains("in Kraft"),
        "saving does not apply: {versions}"
    );

    // The ZIP of the shipped tables brings every table back (version 2).
    let zip = dir.join("zuordnung.zip");
    let restored = run(
        data.path(),
        &["mapping", "import", zip.to_str().expect("utf-8")],
    );
    assert_eq!(restored.status.code(), Some(0), "{restored:?}");
    let again = data.path().join("again");
    run(
        data.path(),
        &["mapping", "export", again.to_str().expect("utf-8")],
    );
    for stem in ["treatment_categories", "stages", "appointment_types"] {
        assert_eq!(
            std::fs::read(dir.join(format!("{stem}.csv"))).expect("first"),
            std::fs::read(again.join(format!("{stem}.csv"))).expect("again"),
            "{stem}"
        );
    }
    let diff = stdout(&run(data.path(), &["mapping", "diff", "1", "2"]));
    assert!(diff.contains("+ BEMA;01;Diagnostik"), "{diff}");
    let restore = run(data.path(), &["mapping", "restore", "1"]);
    assert_eq!(restore.status.code(), Some(0));
    assert!(stdout(&run(data.path(), &["mapping", "versions"])).contains("Version 1"));
}

#[test]
fn an_invalid_import_saves_nothing_and_says_where() {
    let data = tempfile::tempdir().expect("dir");
    let file = data.path().join("kategorien.csv");
    std::fs::write(
        &file,
        "Katalog;Muster;Kategorie\nGOZ;9000;Implantologie\nGOZ;2120-2050;Füllung\nGOZ;3000;Zauberei\n",
    )
    .expect("write");
    let file_text = file.to_str().expect("utf-8");
    let out = run(data.path(), &["mapping", "import", file_text]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("Zeile 3, Spalte „Muster“"), "{text}");
    assert!(text.contains("Zeile 4, Spalte „Kategorie“"), "{text}");
    assert!(text.contains("Nichts übernommen"), "{text}");
    let versions = stdout(&run(data.path(), &["mapping", "versions"]));
    assert!(
        versions.contains("Noch keine gespeicherte Version"),
        "{versions}"
    );

    // Dropping the invalid rows is a choice the person makes.
    let out = run(
        data.path(),
        &["mapping", "import", file_text, "--drop-invalid"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout(&run(data.path(), &["mapping", "versions"])).contains("Import kategorien.csv"));
}

#[test]
fn an_unknown_file_is_refused_and_a_missing_argument_is_a_usage_error() {
    let data = tempfile::tempdir().expect("dir");
    let file = data.path().join("patienten.csv");
    std::fs::write(&file, "Name;Vorname\nMüller;Jürgen\n").expect("write");
    let out = run(
        data.path(),
        &["mapping", "import", file.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("keine bekannte Zuordnungstabelle"));
    assert_eq!(
        run(data.path(), &["mapping", "import"]).status.code(),
        Some(2)
    );
}

#[test]
fn an_overlapping_row_is_a_warning_and_imports_a_shadowed_row_does_not() {
    let data = tempfile::tempdir().expect("dir");
    let file = data.path().join("treatment_categories.csv");
    std::fs::write(
        &file,
        "Katalog;Muster;Kategorie\nGOZ;2000-2120;Füllung\nGOZ;2100-2200;Prothetik\n",
    )
    .expect("write");
    let file_text = file.to_str().expect("utf-8");
    let out = run(data.path(), &["mapping", "import", file_text]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("Zeile 3: Hinweis:"), "{text}");
    assert!(text.contains("warning:"), "{text}");
    assert!(text.contains("Version 1"), "{text}");

    // Dropping invalid rows drops nothing here: a warning is not invalid.
    std::fs::write(
        &file,
        "Katalog;Muster;Kategorie\nGOZ;2000-2120;Füllung\nGOZ;2100-2200;Chirurgie\n",
    )
    .expect("write");
    let out = run(
        data.path(),
        &["mapping", "import", file_text, "--drop-invalid"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let export = data.path().join("export");
    run(
        data.path(),
        &["mapping", "export", export.to_str().expect("utf-8")],
    );
    let categories =
        std::fs::read_to_string(export.join("treatment_categories.csv")).expect("categories");
    assert!(
        categories.contains("GOZ;2100-2200;Chirurgie"),
        "{categories}"
    );

    std::fs::write(
        &file,
        "Katalog;Muster;Kategorie\nGOZ;2000-2200;Füllung\nGOZ;2100-2120;Prothetik\n",
    )
    .expect("write");
    let out = run(data.path(), &["mapping", "import", file_text]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = stdout(&out);
    assert!(text.contains("greift nie"), "{text}");
    assert!(text.contains("Nichts übernommen"), "{text}");
}

/// Issue 11 point 5: saving a mapping version changes the ledger, so it
/// waits for a running sync (exit 4, nothing saved); reading is not held up.
#[test]
fn saving_a_version_while_a_sync_holds_the_ledger_exits_with_4() {
    use ivoris_hubspot_sync::ledger::lock::WriterLock;

    let data = tempfile::tempdir().expect("dir");
    let dir = data.path().join("export");
    let dir_text = dir.to_str().expect("utf-8");
    assert!(
        run(data.path(), &["mapping", "export", dir_text])
            .status
            .success()
    );
    // An edited table: saving it would be version 1.
    let file = data.path().join("Behandlungskategorien.csv");
    std::fs::write(
        &file,
        "Katalog;Muster;Kategorie\r\nGOZ;9000-9170;Implantologie\r\n",
    )
    .expect("write");
    let zip_text = file.to_str().expect("utf-8");
    let sync =
        WriterLock::acquire(&data.path().join("ledger.sqlite"), "sync (schedule)").expect("lock");

    let dry = run(data.path(), &["mapping", "import", zip_text, "--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "a dry run only reads: {dry:?}");
    let refused = run(data.path(), &["mapping", "import", zip_text]);
    assert_eq!(refused.status.code(), Some(4), "{refused:?}");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("sync (schedule)"), "{message}");
    let restore = run(data.path(), &["mapping", "restore", "1"]);
    assert_eq!(restore.status.code(), Some(4), "{restore:?}");
    assert!(
        stdout(&run(data.path(), &["mapping", "versions"]))
            .contains("Noch keine gespeicherte Version"),
        "nothing saved while held"
    );

    drop(sync);
    let saved = run(data.path(), &["mapping", "import", zip_text]);
    assert_eq!(saved.status.code(), Some(0), "{saved:?}");
    assert!(stdout(&saved).contains("Version 1"), "{}", stdout(&saved));
    let versions = stdout(&run(data.path(), &["mapping", "versions"]));
    assert!(versions.contains("Behandlungskategorien.csv"), "{versions}");
}
