//! Writing a download to disk safely: the body streams into a temporary
//! `.ferry-XXXX.part` file in the destination directory and only when it is
//! complete (flushed and synced) does it get its final name, chosen without
//! ever overwriting: `Title.html`, else `Title (2).html`, `Title (3).html`, …
//! Each try is an atomic no-clobber rename (`renameat2(RENAME_NOREPLACE)`, or
//! link + unlink where that is missing, via `tempfile`), so two jobs saving the
//! same title at the same moment get two different names. An interrupted
//! download removes its temporary file and never appears under a final name.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tempfile::TempPath;
use tokio::io::AsyncWriteExt;

use crate::error::ClientError;
use crate::naming::{self, FileName};

/// How many numbered names are tried before giving up.
const MAX_TRIES: u32 = 10_000;

/// A download being written.
#[derive(Debug)]
pub struct Part {
    file: tokio::fs::File,
    temp: TempPath,
    dir: PathBuf,
}

impl Part {
    /// Creates the temporary file in `dir` (which is created if missing).
    pub fn create(dir: &Path) -> Result<Part, ClientError> {
        let save_err = |source| ClientError::Save {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(save_err)?;
        let mut builder = tempfile::Builder::new();
        builder.prefix(".ferry-").suffix(".part");
        // tempfile's default is 0600; a saved page should get the usual
        // permissions (0666 less the umask), like curl's and wget's files.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let (file, temp) = builder.tempfile_in(dir).map_err(save_err)?.into_parts();
        Ok(Part {
            file: tokio::fs::File::from_std(file),
            temp,
            dir: dir.to_path_buf(),
        })
    }

    /// Appends bytes.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.file
            .write_all(data)
            .await
            .map_err(|source| ClientError::Save {
                path: self.temp.to_path_buf(),
                source,
            })
    }

    /// Flushes and syncs, then gives the file its final name in the
    /// destination directory; returns the path it was saved as.
    pub async fn finish(mut self, name: &FileName) -> Result<PathBuf, ClientError> {
        let sync = async {
            self.file.flush().await?;
            self.file.sync_all().await
        };
        if let Err(source) = sync.await {
            return Err(ClientError::Save {
                path: self.temp.to_path_buf(),
                source,
            });
        }
        drop(self.file);
        persist(self.temp, &self.dir, name)
    }
}

/// Renames `temp` to the first free name among `name`, `name (2)`, …
fn persist(mut temp: TempPath, dir: &Path, name: &FileName) -> Result<PathBuf, ClientError> {
    let mut last = PathBuf::new();
    for n in 1..=MAX_TRIES {
        let target = join(dir, &naming::candidate(name, n));
        match temp.persist_noclobber(&target) {
            Ok(()) => return Ok(target),
            Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {
                temp = e.path;
                last = target;
            }
            Err(e) => {
                return Err(ClientError::Save {
                    path: target,
                    source: e.error,
                });
            }
        }
    }
    Err(ClientError::Save {
        path: last,
        source: std::io::Error::new(
            ErrorKind::AlreadyExists,
            format!("{MAX_TRIES} names with this title are taken"),
        ),
    })
}

/// `dir/name`, or just `name` for the current directory (nicer in reports).
fn join(dir: &Path, name: &str) -> PathBuf {
    if dir.as_os_str().is_empty() || dir == Path::new(".") {
        PathBuf::from(name)
    } else {
        dir.join(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn never_overwrites_and_numbers_collisions() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Title.html"), "old").unwrap();
        let name = FileName::verbatim("Title.html");
        for body in ["one", "two"] {
            let mut part = Part::create(dir.path()).unwrap();
            part.write(body.as_bytes()).await.unwrap();
            part.finish(&name).await.unwrap();
        }
        assert_eq!(
            leftovers(dir.path()),
            ["Title (2).html", "Title (3).html", "Title.html"]
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Title.html")).unwrap(),
            "old"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("Title (3).html")).unwrap(),
            "two"
        );
    }

    #[tokio::test]
    async fn concurrent_saves_of_one_name_all_survive() {
        let dir = tempfile::tempdir().unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let path = dir.path().to_path_buf();
            tasks.push(tokio::spawn(async move {
                let mut part = Part::create(&path).unwrap();
                part.write(format!("body {i}").as_bytes()).await.unwrap();
                part.finish(&FileName::verbatim("Same.html")).await.unwrap()
            }));
        }
        let mut bodies = Vec::new();
        for t in tasks {
            let path = t.await.unwrap();
            bodies.push(std::fs::read_to_string(path).unwrap());
        }
        bodies.sort();
        bodies.dedup();
        assert_eq!(bodies.len(), 16, "a save overwrote another");
        assert_eq!(
            leftovers(dir.path()).len(),
            16,
            "{:?}",
            leftovers(dir.path())
        );
    }

    #[tokio::test]
    async fn an_abandoned_part_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = Part::create(dir.path()).unwrap();
        part.write(b"half").await.unwrap();
        drop(part);
        assert!(leftovers(dir.path()).is_empty());
    }
}
