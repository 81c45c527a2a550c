//! The storage boundary: every byte a recording writes goes through [`Storage`].
//!
//! Two implementations: [`FileStorage`] (the local disk) and [`QuotaStorage`] (the local disk
//! with a byte budget, which fails exactly like a full disk once the budget is spent — a
//! library quota in production, and how the full-disk behaviour is tested without a tmpfs).
//!
//! Reads (recovery) use `std::fs` directly: reading never fills a disk.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where recordings are written. Implementations must be usable from several recorder threads.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Creates a directory and its parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Opens an existing file for appending and patching (recovery of a `.part`).
    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Atomically renames a file.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes a directory's entries (creations, renames) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// One open file of a recording. Writes only append or overwrite bytes already there, so a
/// crash can never leave a hole in the middle of what was synced.
pub trait StorageFile: Send + fmt::Debug {
    /// Appends all of `buf` at the end of the file.
    fn append(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Overwrites bytes at `pos`; `pos + buf.len()` must not pass the end of the file.
    fn overwrite(&mut self, pos: u64, buf: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len` bytes (drops a torn tail).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's data durable (fdatasync).
    fn sync(&mut self) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The local file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct FileStorage;

#[derive(Debug)]
struct LocalFile {
    file: File,
    len: u64,
}

impl LocalFile {
    fn open(path: &Path, truncate: bool) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(truncate)
            .truncate(truncate)
            .open(path)?;
        let len = file.seek(SeekFrom::End(0))?;
        Ok(Self { file, len })
    }
}

impl StorageFile for LocalFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        // Positional writes keep `len` the single source of truth even after a failed write
        // left a partial tail (which recovery trims).
        let mut written = 0;
        while written < buf.len() {
            match self.file.write_at(&buf[written..], self.len) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    written += n;
                    self.len += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn overwrite(&mut self, pos: u64, buf: &[u8]) -> io::Result<()> {
        if pos + buf.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "overwrite past the end of the file",
            ));
        }
        self.file.write_all_at(buf, pos)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.len = self.len.min(len);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_data()
    }

    fn len(&self) -> u64 {
        self.len
    }
}

impl Storage for FileStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(LocalFile::open(path, true)?))
    }

    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(LocalFile::open(path, false)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The local disk with a byte budget shared by every file created through it.
///
/// Appends past the budget write what fits and then fail with `ENOSPC`, as a real disk does,
/// so a torn tail is possible and must be handled. Truncating or removing a file gives its
/// bytes back. Clones share one budget.
#[derive(Debug, Clone)]
pub struct QuotaStorage {
    inner: FileStorage,
    remaining: Arc<AtomicU64>,
}

impl QuotaStorage {
    /// A storage that accepts `budget` more bytes in total.
    pub fn new(budget: u64) -> Self {
        Self {
            inner: FileStorage,
            remaining: Arc::new(AtomicU64::new(budget)),
        }
    }

    /// Bytes still available.
    pub fn remaining(&self) -> u64 {
        self.remaining.load(Ordering::Relaxed)
    }

    /// Takes up to `want` bytes from the budget; returns how many were granted.
    fn take(&self, want: u64) -> u64 {
        let mut granted = 0;
        let _ = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                granted = left.min(want);
                Some(left - granted)
            });
        granted
    }

    fn give_back(&self, bytes: u64) {
        self.remaining.fetch_add(bytes, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct QuotaFile {
    inner: LocalFile,
    quota: QuotaStorage,
}

fn no_space() -> io::Error {
    // ENOSPC, exactly what a full disk returns.
    io::Error::from_raw_os_error(28)
}

impl StorageFile for QuotaFile {
    fn append(&mut self, buf: &[u8]) -> io::Result<()> {
        let granted = self.quota.take(buf.len() as u64) as usize;
        self.inner.append(&buf[..granted])?;
        if granted < buf.len() {
            return Err(no_space());
        }
        Ok(())
    }

    fn overwrite(&mut self, pos: u64, buf: &[u8]) -> io::Result<()> {
        self.inner.overwrite(pos, buf)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let before = self.inner.len();
        self.inner.truncate(len)?;
        self.quota
            .give_back(before.saturating_sub(self.inner.len()));
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.inner.sync()
    }

    fn len(&self) -> u64 {
        self.inner.len()
    }
}

impl Storage for QuotaStorage {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn create(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let old = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let inner = LocalFile::open(path, true)?;
        self.give_back(old);
        Ok(Box::new(QuotaFile {
            inner,
            quota: self.clone(),
        }))
    }

    fn open_existing(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        Ok(Box::new(QuotaFile {
            inner: LocalFile::open(path, false)?,
            quota: self.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let replaced = fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        self.inner.rename(from, to)?;
        self.give_back(replaced);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.inner.remove_file(path)?;
        self.give_back(len);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
/// A crash leaves either the old file or the new one, never a torn one.
pub(crate) fn write_atomic(storage: &dyn Storage, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    let mut file = storage.create(&tmp)?;
    let written = file.append(bytes).and_then(|()| file.sync());
    drop(file);
    if let Err(e) = written {
        let _ = storage.remove_file(&tmp);
        return Err(e);
    }
    storage.rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        storage.sync_dir(dir)?;
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_fails_like_a_full_disk_and_keeps_what_fit() {
        let dir = tempfile::tempdir().unwrap();
        let storage = QuotaStorage::new(10);
        let path = dir.path().join("a");
        let mut f = storage.create(&path).unwrap();
        f.append(b"12345678").unwrap();
        let err = f.append(b"abcd").unwrap_err();
        assert!(crate::error::is_disk_full(&err), "{err}");
        assert_eq!(f.len(), 10);
        assert_eq!(fs::read(&path).unwrap(), b"12345678ab");
        f.truncate(8).unwrap();
        assert_eq!(storage.remaining(), 2);
        drop(f);
        storage.remove_file(&path).unwrap();
        assert_eq!(storage.remaining(), 10);
    }

    #[test]
    fn overwrite_never_extends_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = FileStorage.create(&dir.path().join("b")).unwrap();
        f.append(b"hello").unwrap();
        f.overwrite(1, b"EL").unwrap();
        assert!(f.overwrite(4, b"xx").is_err());
        assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"hELlo");
    }

    #[test]
    fn atomic_write_replaces_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta.json");
        write_atomic(&FileStorage, &path, b"{\"a\":1}").unwrap();
        write_atomic(&FileStorage, &path, b"{\"a\":2}").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"{\"a\":2}");
        assert!(!dir.path().join("meta.json.tmp").exists());
    }
}
