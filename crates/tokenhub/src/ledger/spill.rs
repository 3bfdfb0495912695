//! The spill file: usage records the database could not take yet, kept on local disk so
//! that a crash during a database outage loses no more than one batch window.
//!
//! One JSON line per batch, appended and fsynced as the writer forms batches (so an
//! outage costs one `fdatasync` per batch, not per record). Records are replayed in
//! order; the store skips those it holds already (by request id, `BatchAttempt::Retry`),
//! so replaying the file again after a crash between a commit and the file's removal
//! counts nothing twice. A torn last line (a crash during the append) is ignored: that
//! batch was never acknowledged as durable.
//!
//! The file is locked while open, so two instances configured with one path cannot
//! interleave their batches; it is removed once every batch in it is committed.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::store::UsageRecord;

#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("spill file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "spill file {0} is locked by another running instance; give each instance its own ledger.spill_path"
    )]
    Locked(PathBuf),
}

/// A batch read back from the file, and the bytes its line takes there.
pub struct SpilledBatch {
    pub records: Vec<UsageRecord>,
    pub bytes: u64,
}

pub struct Spill {
    path: PathBuf,
    file: Option<File>,
    bytes: u64,
}

impl Spill {
    /// Opens the spill file at `path` if it exists (locking it) and reads the batches a
    /// previous run left in it, oldest first.
    pub fn recover(path: PathBuf) -> Result<(Spill, Vec<SpilledBatch>), SpillError> {
        let mut spill = Spill {
            path,
            file: None,
            bytes: 0,
        };
        if !spill.path.exists() {
            return Ok((spill, Vec::new()));
        }
        let file = spill.open()?;
        let mut batches = Vec::new();
        let mut kept = 0u64;
        for line in BufReader::new(&file).split(b'\n') {
            let line = line.map_err(|e| spill.io(e))?;
            match serde_json::from_slice::<Vec<UsageRecord>>(&line) {
                Ok(batch) => {
                    let bytes = line.len() as u64 + 1;
                    kept += bytes;
                    batches.push(SpilledBatch {
                        records: batch,
                        bytes,
                    });
                }
                Err(error) => {
                    tracing::warn!(path = %spill.path.display(), %error, "ignoring a torn batch at the end of the spill file");
                    break;
                }
            }
        }
        // Later appends must follow the last whole batch, not a torn one.
        file.set_len(kept).map_err(|e| spill.io(e))?;
        spill.bytes = kept;
        spill.file = Some(file);
        Ok((spill, batches))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes held in the file.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends one batch and waits until it is on disk; returns the bytes it took.
    pub fn append(&mut self, batch: &[UsageRecord]) -> Result<u64, SpillError> {
        let mut line = serde_json::to_vec(batch).expect("usage records serialize");
        line.push(b'\n');
        if self.file.is_none() {
            self.file = Some(self.open()?);
        }
        let file = self.file.as_mut().expect("opened above");
        let written = file.write_all(&line).and_then(|()| file.sync_data());
        written.map_err(|e| self.io(e))?;
        self.bytes += line.len() as u64;
        Ok(line.len() as u64)
    }

    /// Every batch in the file is committed: the file goes.
    pub fn clear(&mut self) -> Result<(), SpillError> {
        if self.file.take().is_some() {
            std::fs::remove_file(&self.path).map_err(|e| self.io(e))?;
        }
        self.bytes = 0;
        Ok(())
    }

    fn open(&self) -> Result<File, SpillError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.io(e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(SpillError::Locked(self.path.clone())),
            Err(std::fs::TryLockError::Error(e)) => Err(self.io(e)),
        }
    }

    fn io(&self, source: std::io::Error) -> SpillError {
        SpillError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> UsageRecord {
        UsageRecord {
            request_id: id.into(),
            user_id: 1,
            model: "m".into(),
            status: 200,
            ..Default::default()
        }
    }

    #[test]
    fn batches_come_back_in_order_without_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ledger.spill");
        let (mut spill, none) = Spill::recover(path.clone()).unwrap();
        assert!(none.is_empty());
        spill.append(&[record("a"), record("b")]).unwrap();
        spill.append(&[record("c")]).unwrap();
        let whole = spill.bytes();
        drop(spill);
        // A crash in the middle of the next append.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"[{\"request_id\":\"d").unwrap();
        drop(file);

        let (mut spill, batches) = Spill::recover(path.clone()).unwrap();
        let ids: Vec<Vec<&str>> = batches
            .iter()
            .map(|b| b.records.iter().map(|r| r.request_id.as_str()).collect())
            .collect();
        assert_eq!(ids, vec![vec!["a", "b"], vec!["c"]]);
        assert_eq!(spill.bytes(), whole);
        spill.append(&[record("e")]).unwrap();
        drop(spill);
        let (mut spill, batches) = Spill::recover(path.clone()).unwrap();
        assert_eq!(
            batches.len(),
            3,
            "the append after recovery follows the whole batches"
        );
        spill.clear().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn a_second_instance_cannot_share_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.spill");
        let (mut first, _) = Spill::recover(path.clone()).unwrap();
        first.append(&[record("a")]).unwrap();
        assert!(matches!(Spill::recover(path), Err(SpillError::Locked(_))));
    }
}
