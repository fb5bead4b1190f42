//! Changes made to the cache directory by `ferry cache` while a proxy may be
//! running: appended one line each to `<dir>/journal` ("purge <id>" or
//! "clear"), and read by the running proxy (`Cache::sync_external_changes`)
//! so it stops serving what was removed from its memory tier as well.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::key::ObjectId;
use crate::store::disk::JOURNAL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Purge(ObjectId),
    Clear,
}

pub fn append(dir: &Path, change: Change) -> std::io::Result<()> {
    let line = match change {
        Change::Purge(id) => format!("purge {}\n", id.to_hex()),
        Change::Clear => "clear\n".to_string(),
    };
    // One write of one short line with O_APPEND: concurrent writers do not interleave.
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join(JOURNAL))?
        .write_all(line.as_bytes())
}

/// Reads what was appended since `offset` (complete lines only) and advances it.
pub fn read_from(dir: &Path, offset: &mut u64) -> std::io::Result<String> {
    let mut file = match std::fs::File::open(dir.join(JOURNAL)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len < *offset {
        // The journal was replaced; start over.
        *offset = 0;
    }
    if len == *offset {
        return Ok(String::new());
    }
    file.seek(SeekFrom::Start(*offset))?;
    let mut text = String::new();
    file.take(len - *offset).read_to_string(&mut text)?;
    let complete = text.rfind('\n').map(|i| i + 1).unwrap_or(0);
    text.truncate(complete);
    *offset += complete as u64;
    Ok(text)
}

pub fn parse(text: &str) -> Vec<Change> {
    text.lines()
        .filter_map(|line| match line.split_once(' ') {
            Some(("purge", hex)) => ObjectId::from_hex(hex.trim()).map(Change::Purge),
            None if line.trim() == "clear" => Some(Change::Clear),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_changes_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut offset = 0;
        assert_eq!(read_from(dir.path(), &mut offset).unwrap(), "");
        let id = ObjectId(42);
        append(dir.path(), Change::Purge(id)).unwrap();
        append(dir.path(), Change::Clear).unwrap();
        let text = read_from(dir.path(), &mut offset).unwrap();
        assert_eq!(parse(&text), vec![Change::Purge(id), Change::Clear]);
        assert_eq!(read_from(dir.path(), &mut offset).unwrap(), "");
        assert_eq!(parse("garbage\npurge zz\n"), vec![]);
    }
}
