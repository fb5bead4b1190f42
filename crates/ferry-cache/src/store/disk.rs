//! Object files on disk: where they live, how a complete one is read back and
//! checked, and how one is replaced atomically.
//!
//! Layout: `<dir>/objects/<2 hex>/<32 hex>` for objects and vary markers,
//! `<dir>/tmp/` for files being written (Ferry's own removed at start-up:
//! they are from a crash), `<dir>/journal` for changes made by `ferry cache`,
//! `<dir>/CACHEDIR.TAG` marking the directory as Ferry's.
//!
//! Why files and not a storage crate: bodies must stream in and out without
//! being held in memory (up to `max_object_size`, default 64 MiB), and an
//! object must appear atomically only once complete. cacache is
//! content-addressed with an append-only index and has no size bound or LRU
//! eviction; foyer and redb take whole values in memory. A file per object,
//! written under a temporary name and renamed into place, gives atomic
//! visibility, streaming, crash safety and O(1) lookups by name — the design
//! nginx's proxy cache has proven — with nothing to rebuild at start-up.
//!
//! The directory belongs to the proxy: directories are created 0700 and
//! files 0600, since stored responses are other people's pages.
//!
//! Durability: each object carries a CRC-32C of its body and is renamed
//! into place only once complete, so a crash of the process (`kill -9`)
//! never leaves a partial object visible. There is no fsync before the
//! rename: after a power loss or kernel crash the newest objects may be
//! lost or damaged, and a damaged one fails its checksum when read and is
//! removed. For a cache, losing recent objects is cheaper than an fsync per
//! stored response.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::CacheError;
use crate::key::ObjectId;
use crate::meta::{self, DecodeError, Kind, Meta, TRAILER_LEN};

pub const OBJECTS: &str = "objects";
pub const TMP: &str = "tmp";
pub const JOURNAL: &str = "journal";

/// Creates `path` (and any missing parents) as a private directory, and
/// makes it private if it already exists.
pub fn private_dir(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

/// Creates a new file readable by this user only.
pub fn private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

pub fn object_path(dir: &Path, id: ObjectId) -> PathBuf {
    let hex = id.to_hex();
    dir.join(OBJECTS).join(&hex[..2]).join(hex)
}

/// A stored object (or vary marker) read back from disk.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub meta: Meta,
    pub body_len: u64,
    /// The size of the file: head, body and trailer.
    pub file_len: u64,
    /// The whole body when it was small enough to read (already verified).
    pub body: Option<Bytes>,
}

/// Why a file could not be used.
#[derive(Debug)]
pub enum ReadError {
    Missing,
    /// The file is damaged; the caller removes it.
    Corrupt(&'static str),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            ReadError::Missing
        } else {
            ReadError::Io(e)
        }
    }
}

/// The head of an open object file: its meta and where the body lies.
#[derive(Debug)]
pub struct Head {
    pub meta: Meta,
    pub body_start: u64,
    pub body_len: u64,
    pub body_crc: u32,
}

impl Head {
    /// The size of the whole file ([`read_head`] checked that it adds up).
    pub fn file_len(&self) -> u64 {
        self.body_start + self.body_len + TRAILER_LEN
    }
}

/// Reads and checks the head and trailer of an open object file: the sizes
/// must add up exactly, so a truncated file is never taken for a whole one.
pub fn read_head(file: &mut File) -> Result<Head, ReadError> {
    let file_len = file.metadata()?.len();
    let mut head = vec![0u8; 8192.min(file_len as usize)];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    let (meta, body_start) = loop {
        match Meta::decode(&head) {
            Ok(decoded) => break decoded,
            Err(DecodeError::NeedMore(n)) if (n as u64) <= file_len && n > head.len() => {
                let have = head.len();
                head.resize(n, 0);
                file.read_exact(&mut head[have..])?;
            }
            Err(DecodeError::NeedMore(_)) => return Err(ReadError::Corrupt("truncated head")),
            Err(DecodeError::Corrupt(why)) => return Err(ReadError::Corrupt(why)),
        }
    };
    if file_len < body_start + TRAILER_LEN {
        return Err(ReadError::Corrupt("truncated"));
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    file.seek(SeekFrom::Start(file_len - TRAILER_LEN))?;
    file.read_exact(&mut trailer)?;
    let (body_crc, body_len) = meta::decode_trailer(&trailer);
    if body_start
        .checked_add(body_len)
        .and_then(|n| n.checked_add(TRAILER_LEN))
        != Some(file_len)
    {
        return Err(ReadError::Corrupt("length mismatch"));
    }
    Ok(Head {
        meta,
        body_start,
        body_len,
        body_crc,
    })
}

/// Reads an object file; bodies up to `read_body_max` bytes are read whole and
/// verified against their checksum.
pub fn read(path: &Path, read_body_max: u64) -> Result<Loaded, ReadError> {
    let mut file = File::open(path)?;
    let head = read_head(&mut file)?;
    let body = if head.meta.kind == Kind::Object && head.body_len <= read_body_max {
        let mut body = vec![0u8; head.body_len as usize];
        file.seek(SeekFrom::Start(head.body_start))?;
        file.read_exact(&mut body)?;
        if crc32c::crc32c(&body) != head.body_crc {
            return Err(ReadError::Corrupt("body checksum mismatch"));
        }
        Some(Bytes::from(body))
    } else {
        None
    };
    Ok(Loaded {
        file_len: head.file_len(),
        meta: head.meta,
        body_len: head.body_len,
        body,
    })
}

/// A file being written in `tmp/`; it becomes visible only through
/// [`commit`](TempObject::commit). Dropped uncommitted, it is removed.
pub struct TempObject {
    path: PathBuf,
    file: Option<io::BufWriter<File>>,
    crc: u32,
    body_len: u64,
}

impl TempObject {
    pub fn create(dir: &Path, id: ObjectId, meta: &Meta) -> Result<TempObject, CacheError> {
        // Sharded like objects/: one directory for every file being written
        // serializes file creation on that directory's lock.
        let hex = id.to_hex();
        let shard = dir.join(TMP).join(&hex[..2]);
        let path = shard.join(format!("{hex}.{:x}.tmp", rand_suffix()));
        let file = match private_file(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                private_dir(&shard)?;
                private_file(&path)?
            }
            other => other?,
        };
        let mut file = io::BufWriter::with_capacity(32 * 1024, file);
        let mut obj = TempObject {
            path,
            file: None,
            crc: 0,
            body_len: 0,
        };
        file.write_all(&meta.encode()?)?;
        obj.file = Some(file);
        Ok(obj)
    }

    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("closed"))?;
        file.write_all(chunk)?;
        self.crc = crc32c::crc32c_append(self.crc, chunk);
        self.body_len += chunk.len() as u64;
        Ok(())
    }

    /// Copies `len` body bytes from `from` (positioned at the body).
    pub fn copy_from(&mut self, from: &mut File, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            from.read_exact(&mut buf[..n])?;
            self.write(&buf[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes the trailer and renames the file into place, replacing any
    /// older version atomically. Returns the final file size.
    pub fn commit(mut self, target: &Path) -> io::Result<u64> {
        let mut file = self.file.take().ok_or_else(|| io::Error::other("closed"))?;
        let trailer = meta::encode_trailer(self.crc, self.body_len);
        file.write_all(&trailer)?;
        let file = file.into_inner().map_err(|e| e.into_error())?;
        let size = file.metadata()?.len();
        drop(file);
        if let Some(parent) = target.parent() {
            if !parent.is_dir() {
                private_dir(parent)?;
            }
        }
        fs::rename(&self.path, target)?;
        Ok(size)
    }
}

impl Drop for TempObject {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Writes a small file (a vary marker) atomically.
pub fn write_small(dir: &Path, id: ObjectId, meta: &Meta) -> Result<u64, CacheError> {
    let obj = TempObject::create(dir, id, meta)?;
    Ok(obj.commit(&object_path(dir, id))?)
}

/// Every object file under `objects/`: (id, size, modified time).
pub fn scan(
    dir: &Path,
    mut each: impl FnMut(ObjectId, u64, std::time::SystemTime),
) -> io::Result<()> {
    let objects = dir.join(OBJECTS);
    let Ok(shards) = fs::read_dir(&objects) else {
        return Ok(());
    };
    for shard in shards.flatten() {
        let Ok(files) = fs::read_dir(shard.path()) else {
            continue;
        };
        for file in files.flatten() {
            let name = file.file_name();
            let Some(id) = name.to_str().and_then(ObjectId::from_hex) else {
                continue;
            };
            if let Ok(meta) = file.metadata() {
                let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                each(id, meta.len(), modified);
            }
        }
    }
    Ok(())
}

/// The tag that marks a directory as a cache, from the Cache Directory
/// Tagging Specification (backup tools skip tagged directories); Ferry also
/// reads it as "this directory is Ferry's to manage".
pub const TAG: &str = "CACHEDIR.TAG";
const TAG_SIGNATURE: &str = "Signature: 8a477f597d28d172789f06886806bc55";
const TAG_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This directory is a Ferry cache. Ferry removes files under objects/ and tmp/.\n";

/// Why a directory cannot become the cache's.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(
        "it holds {found:?}, which Ferry did not write; give an empty or new directory, \
         or one Ferry made (it has a CACHEDIR.TAG naming Ferry)"
    )]
    Foreign { found: String },
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Makes `dir` the cache's directory: creates it, or accepts it if it is
/// empty, tagged by Ferry, or laid out as a Ferry cache from before tags.
/// Anything else is refused *before* Ferry changes anything in it, since
/// start-up empties `tmp/` and makes the directory private: pointed at `/` or
/// a home directory by mistake, that would lose other people's files.
pub fn claim(dir: &Path) -> Result<(), ClaimError> {
    match fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
        Ok(entries) => {
            let tagged = fs::read_to_string(dir.join(TAG))
                .is_ok_and(|t| t.starts_with(TAG_SIGNATURE) && t.contains("Ferry"));
            if !tagged {
                for entry in entries {
                    let name = entry?.file_name();
                    if ![OBJECTS, TMP, JOURNAL].iter().any(|n| name == *n) {
                        return Err(ClaimError::Foreign {
                            found: name.to_string_lossy().into_owned(),
                        });
                    }
                }
            }
        }
    }
    private_dir(dir)?;
    let tag = dir.join(TAG);
    if !tag.exists() {
        private_file(&tag)?.write_all(TAG_TEXT.as_bytes())?;
    }
    Ok(())
}

/// Empties `tmp/` of the files Ferry was writing when the process stopped.
/// Only names Ferry gives ([`TempObject`]'s `<id>.<n>.tmp` in two-hex
/// shards, and the start-up probe) are removed.
pub fn clear_tmp(dir: &Path) -> io::Result<()> {
    let tmp = dir.join(TMP);
    let _ = fs::remove_file(tmp.join(PROBE));
    if let Ok(shards) = fs::read_dir(&tmp) {
        for shard in shards.flatten() {
            let name = shard.file_name();
            let is_shard = name.len() == 2
                && name
                    .to_str()
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_shard {
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else {
                continue;
            };
            for file in files.flatten() {
                let name = file.file_name();
                let ours = name.to_str().is_some_and(|n| {
                    n.ends_with(".tmp")
                        && n.split('.').next().and_then(ObjectId::from_hex).is_some()
                });
                if ours {
                    let _ = fs::remove_file(file.path());
                }
            }
        }
    }
    private_dir(&tmp)
}

/// The file start-up writes in `tmp/` to prove the directory is writable.
pub const PROBE: &str = "probe";

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        let mut m = Meta::vary_marker("http://a.test/", vec![], 0);
        m.kind = Kind::Object;
        m.status = 200;
        m
    }

    #[test]
    fn a_committed_object_reads_back_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(TMP)).unwrap();
        let id = ObjectId::digest(b"k");
        let mut t = TempObject::create(dir.path(), id, &meta()).unwrap();
        t.write(b"hello ").unwrap();
        t.write(b"world").unwrap();
        let target = object_path(dir.path(), id);
        t.commit(&target).unwrap();
        let loaded = read(&target, 1024).unwrap();
        assert_eq!(loaded.body.as_deref(), Some(&b"hello world"[..]));
        assert_eq!(loaded.body_len, 11);
        // Too big to read whole: only the head.
        assert!(read(&target, 4).unwrap().body.is_none());

        let bytes = fs::read(&target).unwrap();
        // Truncated anywhere: refused.
        let trailer = TRAILER_LEN as usize;
        for cut in [1, 20, bytes.len() - trailer - 1, bytes.len() - 1] {
            fs::write(&target, &bytes[..cut]).unwrap();
            assert!(
                matches!(read(&target, 1024), Err(ReadError::Corrupt(_))),
                "cut at {cut}"
            );
        }
        // A flipped body byte: refused when read whole.
        let mut flipped = bytes.clone();
        let body_at = bytes.len() - trailer - 3;
        flipped[body_at] ^= 0x20;
        fs::write(&target, &flipped).unwrap();
        assert!(matches!(
            read(&target, 1024),
            Err(ReadError::Corrupt("body checksum mismatch"))
        ));
        fs::remove_file(&target).unwrap();
        assert!(matches!(read(&target, 1024), Err(ReadError::Missing)));
    }

    #[test]
    fn an_uncommitted_object_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(TMP)).unwrap();
        let id = ObjectId::digest(b"k");
        let mut t = TempObject::create(dir.path(), id, &meta()).unwrap();
        t.write(b"partial").unwrap();
        drop(t);
        let shard = dir.path().join(TMP).join(&id.to_hex()[..2]);
        assert_eq!(fs::read_dir(shard).unwrap().count(), 0);
        assert!(!object_path(dir.path(), id).exists());
    }
}
