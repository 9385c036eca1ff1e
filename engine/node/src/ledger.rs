//! gossip-node's durable ledger: the [`Ledger`] the driver commits delivered blocks to and serves
//! state requests from, one [redb](https://www.redb.org) file,
//! `<peer.fileSystemPath>/`[`LEDGER_FILE_NAME`].
//!
//! Tables: `blocks`, keyed by (channel bytes, block number), holding the marshalled
//! `common.Block` (`Payload.data`; private data is not kept: gossip-node implements none); and
//! `heights`, keyed by channel, holding the next block number. A commit writes the block and the
//! new height in one write transaction, made durable (`fsync`) before it returns: after a crash
//! (SIGKILL, power loss) the file holds every block whose commit returned, with the matching
//! height, and nothing of a commit that did not return. redb checksums what it writes and rolls an
//! interrupted transaction back when the file is next opened (after an unclean stop the open
//! walks the file to rebuild its allocator state first, which takes longer on a large file).
//!
//! One process at a time: redb locks the file, so a second gossip-node on the same
//! `peer.fileSystemPath` fails at start-up.

use std::path::{Path, PathBuf};

use gossip_engine::ledger::{INITIAL_HEIGHT, Ledger, LedgerError};
use gossip_proto::gossip::Payload;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

/// The ledger file's name inside `peer.fileSystemPath`.
pub const LEDGER_FILE_NAME: &str = "gossip-ledger.redb";

/// Memory redb may use to cache the file's pages and buffer a transaction's writes (its default
/// is 1 GiB; a gossip-node's whole resident set is about 10 MiB). Reads past the cache go to the
/// OS page cache. Measured in a debug test: 3,000 commits of 10 KiB blocks add 1.3 MiB of resident
/// memory at 1 MiB (4.4 MiB at 4 MiB) at the same speed; 256 KiB made commits 14 times slower.
pub const LEDGER_CACHE_LEN_MAX_BYTES: usize = 1024 * 1024;

/// (channel, block number) → marshalled block.
const BLOCKS: TableDefinition<(&[u8], u64), &[u8]> = TableDefinition::new("blocks");
/// channel → next block number.
const HEIGHTS: TableDefinition<&[u8], u64> = TableDefinition::new("heights");

/// Why the ledger could not be opened; nothing is left open.
#[derive(Debug, thiserror::Error)]
pub enum LedgerOpenError {
    /// `peer.fileSystemPath` could not be created.
    #[error("creating {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be opened or created (another process has it open, it is not a redb
    /// file, permissions, ...).
    #[error("opening the ledger {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<redb::Error>,
    },
}

/// The redb [`Ledger`] (module doc).
#[derive(Debug)]
pub struct RedbLedger {
    db: Database,
    path: PathBuf,
}

fn storage(e: impl Into<redb::Error>) -> LedgerError {
    LedgerError::Storage(Box::new(e.into()))
}

impl RedbLedger {
    /// Opens `<dir>/`[`LEDGER_FILE_NAME`], creating the folder and the file as needed. May take a
    /// while after an unclean stop (module doc); call it where blocking is fine.
    pub fn open(dir: &Path) -> Result<Self, LedgerOpenError> {
        std::fs::create_dir_all(dir).map_err(|source| LedgerOpenError::Folder {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LEDGER_FILE_NAME);
        let open_error = |e: redb::Error| LedgerOpenError::Open {
            path: path.clone(),
            source: Box::new(e),
        };
        // redb "repairs" a new file too (it has no saved allocator state yet): only an existing
        // file was not closed cleanly. The callback runs once per step; the first says so.
        let existed = path.exists();
        let db = Database::builder()
            .set_cache_size(LEDGER_CACHE_LEN_MAX_BYTES)
            .set_repair_callback(move |session| {
                if existed && session.progress() == 0.0 {
                    tracing::warn!(target: "gossip-node.ledger", "the ledger was not closed cleanly: repairing it");
                }
            })
            .create(&path)
            .map_err(|e| open_error(e.into()))?;
        // Both tables exist from the start, so reads never meet a missing table.
        let txn = db.begin_write().map_err(|e| open_error(e.into()))?;
        txn.open_table(BLOCKS).map_err(|e| open_error(e.into()))?;
        txn.open_table(HEIGHTS).map_err(|e| open_error(e.into()))?;
        txn.commit().map_err(|e| open_error(e.into()))?;
        Ok(Self { db, path })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Ledger for RedbLedger {
    fn commit(&self, channel: &[u8], payload: &Payload) -> Result<(), LedgerError> {
        self.commit_batch(channel, std::slice::from_ref(payload))
    }

    /// One write transaction (one `fsync`) for all of `payloads`: all are committed or none.
    fn commit_batch(&self, channel: &[u8], payloads: &[Payload]) -> Result<(), LedgerError> {
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut heights = txn.open_table(HEIGHTS).map_err(storage)?;
            let height = heights
                .get(channel)
                .map_err(storage)?
                .map_or(INITIAL_HEIGHT, |h| h.value());
            let mut blocks = txn.open_table(BLOCKS).map_err(storage)?;
            for (payload, expected) in payloads.iter().zip(height..) {
                if payload.seq_num != expected {
                    // Dropping the transaction aborts it: nothing is written.
                    return Err(LedgerError::OutOfOrder {
                        seq_num: payload.seq_num,
                        height: expected,
                    });
                }
                blocks
                    .insert((channel, payload.seq_num), payload.data.as_ref())
                    .map_err(storage)?;
            }
            let new_height = height + payloads.len() as u64;
            heights.insert(channel, new_height).map_err(storage)?;
        }
        txn.commit().map_err(storage)
    }

    fn height(&self, channel: &[u8]) -> Result<u64, LedgerError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let heights = txn.open_table(HEIGHTS).map_err(storage)?;
        Ok(heights
            .get(channel)
            .map_err(storage)?
            .map_or(INITIAL_HEIGHT, |h| h.value()))
    }

    fn blocks(
        &self,
        channel: &[u8],
        start_seq: u64,
        end_seq: u64,
    ) -> Result<Vec<Payload>, LedgerError> {
        if start_seq > end_seq {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read().map_err(storage)?;
        let blocks = txn.open_table(BLOCKS).map_err(storage)?;
        let range = blocks
            .range((channel, start_seq)..=(channel, end_seq))
            .map_err(storage)?;
        range
            .map(|entry| {
                let (key, value) = entry.map_err(storage)?;
                Ok(Payload {
                    seq_num: key.value().1,
                    data: value.value().to_vec().into(),
                    private_data: Vec::new(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn block(seq: u64) -> Payload {
        Payload {
            seq_num: seq,
            data: Bytes::from(format!("block {seq}")),
            private_data: Vec::new(),
        }
    }

    fn seqs(blocks: &[Payload]) -> Vec<u64> {
        blocks.iter().map(|b| b.seq_num).collect()
    }

    #[test]
    fn reopening_keeps_heights_and_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let folder = dir.path().join("production");
        {
            let ledger = RedbLedger::open(&folder).expect("open");
            assert_eq!(ledger.path(), folder.join(LEDGER_FILE_NAME));
            assert_eq!(ledger.height(b"a").unwrap(), INITIAL_HEIGHT);
            for seq in 1..=4 {
                ledger.commit(b"a", &block(seq)).expect("commit");
            }
            ledger.commit(b"b", &block(1)).expect("commit");
        }
        let ledger = RedbLedger::open(&folder).expect("reopen");
        assert_eq!(ledger.height(b"a").unwrap(), 5);
        assert_eq!(ledger.height(b"b").unwrap(), 2);
        assert_eq!(ledger.height(b"c").unwrap(), INITIAL_HEIGHT);
        assert_eq!(
            ledger.blocks(b"a", 1, 4).unwrap(),
            (1..=4).map(block).collect::<Vec<_>>()
        );
        ledger
            .commit(b"a", &block(5))
            .expect("goes on from the stored height");
        assert_eq!(ledger.height(b"a").unwrap(), 6);
    }

    #[test]
    fn commits_refuse_any_block_but_the_next() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = RedbLedger::open(dir.path()).expect("open");
        for seq in [0, 2] {
            assert!(matches!(
                ledger.commit(b"a", &block(seq)),
                Err(LedgerError::OutOfOrder { height: 1, .. })
            ));
        }
        ledger.commit(b"a", &block(1)).expect("commit");
        assert!(matches!(
            ledger.commit(b"a", &block(1)),
            Err(LedgerError::OutOfOrder {
                seq_num: 1,
                height: 2
            })
        ));
        assert_eq!(ledger.height(b"a").unwrap(), 2);
        assert_eq!(
            seqs(&ledger.blocks(b"a", 0, 10).unwrap()),
            [1],
            "nothing else written"
        );
    }

    #[test]
    fn a_batch_is_committed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = RedbLedger::open(dir.path()).expect("open");
        let batch: Vec<Payload> = (1..=5).map(block).collect();
        ledger.commit_batch(b"a", &batch).expect("batch");
        assert_eq!(ledger.height(b"a").unwrap(), 6);
        let broken = [block(6), block(7), block(9)];
        assert!(matches!(
            ledger.commit_batch(b"a", &broken),
            Err(LedgerError::OutOfOrder {
                seq_num: 9,
                height: 8
            })
        ));
        assert_eq!(
            ledger.height(b"a").unwrap(),
            6,
            "6 and 7 not written either"
        );
        assert_eq!(seqs(&ledger.blocks(b"a", 1, 10).unwrap()), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn blocks_are_an_inclusive_range_per_channel_skipping_what_is_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ledger = RedbLedger::open(dir.path()).expect("open");
        for seq in 1..=6 {
            ledger.commit(b"a", &block(seq)).expect("commit");
        }
        // A channel whose name extends the other's must not leak into its range.
        for seq in 1..=3 {
            ledger.commit(b"ab", &block(seq)).expect("commit");
        }
        assert_eq!(seqs(&ledger.blocks(b"a", 2, 4).unwrap()), [2, 3, 4]);
        assert_eq!(seqs(&ledger.blocks(b"a", 5, 100).unwrap()), [5, 6]);
        assert_eq!(
            seqs(&ledger.blocks(b"a", 0, u64::MAX).unwrap()),
            [1, 2, 3, 4, 5, 6]
        );
        assert_eq!(ledger.blocks(b"a", 3, 3).unwrap(), [block(3)]);
        assert!(ledger.blocks(b"a", 7, 9).unwrap().is_empty());
        assert!(ledger.blocks(b"a", 4, 2).unwrap().is_empty());
        assert_eq!(seqs(&ledger.blocks(b"ab", 0, 10).unwrap()), [1, 2, 3]);
        assert!(ledger.blocks(b"", 0, u64::MAX).unwrap().is_empty());
    }

    #[test]
    fn a_second_open_of_the_same_folder_fails() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _first = RedbLedger::open(dir.path()).expect("open");
        let second = RedbLedger::open(dir.path());
        assert!(
            matches!(second, Err(LedgerOpenError::Open { .. })),
            "{second:?}"
        );
    }
}
