//! One scenario end to end, as `loadgen run` and every rate of `loadgen sweep` do it: a work
//! folder, the run ([`crate::commands::run::run`]), then `<results>/<name>/` (run.json, timeseries.csv,
//! latency.hgrm, report.html, logs/).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cluster::launcher::LocalLauncher;
use crate::commands::run::{Progress, RunError, RunOutput};
use crate::scenario::Scenario;

/// Work folders are `<temp>/loadgen-<scenario name>-<loadgen pid>`.
const WORK_DIR_PREFIX: &str = "loadgen-";

/// The file in a work folder that its loadgen holds an exclusive lock on while it runs. The
/// kernel releases the lock when the process ends, however it ends, and across pid namespaces.
const WORK_DIR_LOCK_FILE: &str = "loadgen.lock";

/// Creates `work` and locks it as in use by this process until the returned file is dropped.
fn create_locked_work_dir(work: &Path) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(work)?;
    let lock = std::fs::File::create(work.join(WORK_DIR_LOCK_FILE))?;
    lock.lock()?;
    Ok(lock)
}

/// A lock file younger than this is never judged stale: a loadgen starting at the same moment
/// may not have locked it yet.
const WORK_DIR_STALE_AGE_MIN: Duration = Duration::from_secs(60);

/// Removes the work folders in `temp` that no running loadgen holds: a run stopped by a signal
/// (Ctrl-C, a CI timeout) leaves its folder (PKI, configs, node logs) behind, and its nodes exit
/// with it (their stdin pipe closes). Folders without a lock file are not ours to judge and are
/// kept. Returns the folders removed.
fn remove_stale_work_dirs(temp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let is_work_dir = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(WORK_DIR_PREFIX));
        if !is_work_dir || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        let Ok(lock) = std::fs::File::open(path.join(WORK_DIR_LOCK_FILE)) else {
            continue;
        };
        let age = lock
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age >= WORK_DIR_STALE_AGE_MIN)
            && lock.try_lock().is_ok()
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

/// A job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The run itself.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A file or folder could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What a job produced.
pub struct JobOutput {
    /// The run.json document.
    pub doc: Value,
    /// The folder it wrote: `<results>/<name>/`.
    pub dir: PathBuf,
    /// Everything measured.
    pub run: RunOutput,
}

/// Runs `s` as local `bin` processes and writes its results under `results`.
pub fn run_and_write(
    s: &Scenario,
    bin: &Path,
    results: &Path,
    progress: &mut dyn Progress,
) -> Result<JobOutput, JobError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| JobError::Write { path, source }
    };
    let temp = std::env::temp_dir();
    for stale in remove_stale_work_dirs(&temp) {
        progress.phase(&format!(
            "removed {}, left by a loadgen that no longer runs",
            stale.display()
        ));
    }
    let work = temp.join(format!(
        "{WORK_DIR_PREFIX}{}-{}",
        s.name,
        std::process::id()
    ));
    let work_lock = create_locked_work_dir(&work).map_err(write_err(&work))?;
    let out = crate::commands::run::run(s, &mut LocalLauncher, bin, &work, progress);
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            // Keep the work folder (node logs) of a failed run for diagnosis: without its lock
            // file no later run removes it.
            let _ = std::fs::remove_file(work.join(WORK_DIR_LOCK_FILE));
            progress.phase(&format!("run failed; node logs are in {}", work.display()));
            return Err(e.into());
        }
    };
    let mut doc = crate::report::run_json(
        &out,
        &crate::measure::procfs::machine(),
        crate::measure::procfs::git_commit().as_deref(),
    );
    let dirty = crate::measure::procfs::git_dirty();
    if dirty == Some(true) {
        progress.phase(
            "warning: tracked files differ from loadgen_git_commit (run.json: git_dirty = true)",
        );
    }
    doc["git_dirty"] = serde_json::json!(dirty);
    let dir = results.join(&s.name);
    crate::report::write_all(&dir, &out, &doc).map_err(write_err(&dir))?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(write_err(&logs))?;
    for (name, log) in out.node_names.iter().zip(&out.logs) {
        // A node that never wrote a log has none to copy.
        let _ = std::fs::copy(log, logs.join(format!("{name}.log")));
    }
    let _ = std::fs::remove_dir_all(&work);
    drop(work_lock);
    Ok(JobOutput { doc, dir, run: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_work_dirs_that_no_running_loadgen_holds_are_removed() {
        let temp = std::env::temp_dir().join(format!("job-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&temp);
        std::fs::create_dir_all(&temp).unwrap();
        let held = temp.join("loadgen-default-1");
        let _held_lock = create_locked_work_dir(&held).unwrap();
        let backdate = |dir: &Path| {
            let lock = std::fs::File::options()
                .write(true)
                .open(dir.join(WORK_DIR_LOCK_FILE))
                .unwrap();
            let created = lock.metadata().unwrap().modified().unwrap();
            lock.set_modified(created - 2 * WORK_DIR_STALE_AGE_MIN)
                .unwrap();
        };
        backdate(&held);
        // Its loadgen ended without cleaning up.
        let left = temp.join("loadgen-scenario-a-n25-2");
        drop(create_locked_work_dir(&left).unwrap());
        backdate(&left);
        // Unheld but just created: a loadgen starting now may be about to lock it.
        let fresh = temp.join("loadgen-default-4");
        drop(create_locked_work_dir(&fresh).unwrap());
        let unlocked = temp.join("loadgen-notes");
        std::fs::create_dir_all(&unlocked).unwrap();
        let other = temp.join("other-3");
        drop(create_locked_work_dir(&other).unwrap());

        let removed = remove_stale_work_dirs(&temp);

        assert_eq!(removed, vec![left.clone()]);
        assert!(!left.exists());
        assert!(held.exists() && fresh.exists() && unlocked.exists() && other.exists());
        std::fs::remove_dir_all(&temp).unwrap();
    }
}
