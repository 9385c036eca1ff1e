//! One scenario end to end, as `loadgen run` and every rate of `loadgen sweep` do it: a work
//! folder, the run ([`crate::run::run`]), then `<results>/<name>/` (run.json, timeseries.csv,
//! latency.hgrm, report.html, logs/).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::launcher::LocalLauncher;
use crate::run::{Progress, RunError, RunOutput};
use crate::scenario::Scenario;

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
    let work = std::env::temp_dir().join(format!("loadgen-{}-{}", s.name, std::process::id()));
    std::fs::create_dir_all(&work).map_err(write_err(&work))?;
    let out = crate::run::run(s, &mut LocalLauncher, bin, &work, progress);
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            // Keep the work folder (node logs) of a failed run for diagnosis.
            progress.phase(&format!("run failed; node logs are in {}", work.display()));
            return Err(e.into());
        }
    };
    let mut doc = crate::report::run_json(
        &out,
        &crate::procfs::machine(),
        crate::procfs::git_commit().as_deref(),
    );
    let dirty = crate::procfs::git_dirty();
    if dirty == Some(true) {
        progress
            .phase("warning: tracked files differ from git_commit (run.json: git_dirty = true)");
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
    Ok(JobOutput { doc, dir, run: out })
}
