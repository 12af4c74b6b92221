//! All mapping tables in one ZIP file: one CSV per table, named by
//! [`TableName::file_stem`], as the export writes them. Reading is bounded
//! (entry count and size), so a hostile archive cannot exhaust memory.

use std::io::{Cursor, Read, Write};

use super::Mapping;
use super::table::export_table;
use super::validate::TableName;

/// Largest table file read from an archive.
const MAX_ENTRY_BYTES: u64 = 16 * 1024 * 1024;

/// Most entries looked at in an archive.
const MAX_ENTRIES: usize = 64;

/// Why an archive could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("ZIP-Datei: {de} / ZIP file: {en}")]
pub struct ArchiveError {
    /// Reason in German.
    de: String,
    /// Reason in English.
    en: String,
}

impl ArchiveError {
    fn new(de: impl Into<String>, en: impl Into<String>) -> ArchiveError {
        ArchiveError {
            de: de.into(),
            en: en.into(),
        }
    }

    fn broken(error: &dyn std::fmt::Display) -> ArchiveError {
        ArchiveError::new(
            format!("nicht lesbar ({error})"),
            format!("unreadable ({error})"),
        )
    }
}

/// Every table of `mapping` as CSV in one ZIP.
pub fn export_zip(mapping: &Mapping) -> Result<Vec<u8>, ArchiveError> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for table in TableName::ALL {
        let bytes = export_table(mapping, table).map_err(|e| ArchiveError::broken(&e))?;
        writer
            .start_file(format!("{}.csv", table.file_stem()), options)
            .map_err(|e| ArchiveError::broken(&e))?;
        writer
            .write_all(&bytes)
            .map_err(|e| ArchiveError::broken(&e))?;
    }
    let cursor = writer.finish().map_err(|e| ArchiveError::broken(&e))?;
    Ok(cursor.into_inner())
}

/// The CSV files of an archive, by file name (directories and other files
/// skipped).
pub fn read_zip(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ArchiveError> {
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| ArchiveError::broken(&e))?;
    if archive.len() > MAX_ENTRIES {
        return Err(ArchiveError::new(
            format!("zu viele Dateien ({})", archive.len()),
            format!("too many files ({})", archive.len()),
        ));
    }
    let mut files = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| ArchiveError::broken(&e))?;
        let name = entry
            .name()
            .map_err(|e| ArchiveError::broken(&e))?
            .into_owned();
        if entry.is_dir() || !name.to_lowercase().ends_with(".csv") {
            continue;
        }
        let mut content = Vec::new();
        (&mut entry)
            .take(MAX_ENTRY_BYTES + 1)
            .read_to_end(&mut content)
            .map_err(|e| ArchiveError::broken(&e))?;
        if content.len() as u64 > MAX_ENTRY_BYTES {
            return Err(ArchiveError::new(
                format!("„{name}“ ist zu groß"),
                format!("\"{name}\" is too large"),
            ));
        }
        files.push((name, content));
    }
    Ok(files)
}
