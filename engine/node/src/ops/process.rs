//! Gauges of the node process itself for `/metrics`: the tokio runtime's alive tasks and the open
//! file descriptors, read at each scrape. A leak of either (a task or a socket per connection
//! never released) shows as a count that grows over a soak while the load stays flat.

use std::path::Path;

/// The process gauges of one scrape.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessGauges {
    /// Tasks alive on the tokio runtime that serves the scrape
    /// (`RuntimeMetrics::num_alive_tasks`: spawned and not yet finished, the scrape's own
    /// connection task among them); `None` outside a runtime.
    pub tokio_tasks_alive: Option<u64>,
    /// File descriptors open in the process (entries of `/proc/self/fd`, less the one the
    /// listing itself holds); `None` where that folder is unreadable (not Linux).
    pub open_fds: Option<u64>,
}

impl ProcessGauges {
    /// Reads both gauges now.
    pub fn read() -> Self {
        ProcessGauges {
            tokio_tasks_alive: tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| h.metrics().num_alive_tasks() as u64),
            open_fds: open_fds(),
        }
    }
}

/// File descriptors open in this process: the entries of `/proc/self/fd` less the descriptor
/// of the listing itself; `None` where the folder is unreadable (not Linux).
pub fn open_fds() -> Option<u64> {
    // The listing's own descriptor is open while it reads, so it lists itself.
    fd_entries(Path::new("/proc/self/fd")).map(|n| n.saturating_sub(1))
}

/// The entries of a `/proc/<pid>/fd` folder, that is the descriptors open in that process when
/// another process lists it (any folder's entries, in fact); `None` when it cannot be listed
/// (the process is gone, belongs to another user, or the system is not Linux). A process that
/// lists its own folder sees the listing's descriptor too ([`open_fds`] subtracts it). Shared
/// with loadgen, which counts its nodes' descriptors with it.
pub fn fd_entries(dir: &Path) -> Option<u64> {
    Some(std::fs::read_dir(dir).ok()?.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_entries_counts_a_folders_entries_and_none_when_unlistable() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(fd_entries(dir.path()), Some(0));
        for name in ["0", "1", "2", "7"] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        assert_eq!(fd_entries(dir.path()), Some(4));
        assert_eq!(fd_entries(&dir.path().join("missing")), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_fds_counts_at_least_a_file_held_open() {
        let _held = std::fs::File::open("/proc/self/status").expect("open");
        let n = open_fds().expect("/proc/self/fd");
        assert!(n >= 1, "{n}");
    }

    #[tokio::test]
    async fn inside_a_runtime_the_alive_tasks_count_the_spawned_ones() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = rx.await;
        });
        let g = ProcessGauges::read();
        assert_eq!(g.tokio_tasks_alive, Some(1), "{g:?}");
        assert_eq!(g.open_fds.is_some(), cfg!(target_os = "linux"), "{g:?}");
        tx.send(()).expect("task waits");
        task.await.expect("task");
        assert_eq!(ProcessGauges::read().tokio_tasks_alive, Some(0));
    }

    #[test]
    fn outside_a_runtime_there_is_no_task_count() {
        assert_eq!(ProcessGauges::read().tokio_tasks_alive, None);
    }
}
