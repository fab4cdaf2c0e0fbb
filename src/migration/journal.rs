//! The agent's state file: what a move changed here that an Abort must
//! undo (`control::migration::agent::Durable`), written before each
//! operation (write to a temporary file, fsync, rename, fsync the
//! directory), read back when the agent starts.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Mutex,
};

use control::migration::agent::{Agent, Durable};

pub struct Journal {
    path: PathBuf,
    /// The text last written (a step that changes nothing is not written).
    last: Mutex<String>,
}

impl Journal {
    /// Open the state file at `path` (its directory is made if missing)
    /// and read what a previous run left; a file that cannot be read is
    /// an error naming it, never silently started over.
    pub fn open(path: &Path) -> anyhow::Result<(Self, BTreeMap<String, Durable>)> {
        use anyhow::Context as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("migration.agent.state_file: {}", dir.display()))?;
        }
        let (text, records) = match std::fs::read_to_string(path) {
            Ok(t) => {
                let r = serde_json::from_str(&t).with_context(|| {
                    format!(
                        "migration.agent.state_file {}: not a state file this agent wrote",
                        path.display()
                    )
                })?;
                (t, r)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ("{}".to_string(), BTreeMap::new())
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("migration.agent.state_file {}", path.display()))
            }
        };
        Ok((
            Self {
                path: path.into(),
                last: Mutex::new(text),
            },
            records,
        ))
    }

    /// Write the engine's records if they changed. The engine is read
    /// under the file's lock, so two sides of a move saving at once
    /// cannot write an older record over a newer one.
    pub fn save(&self, engine: &Mutex<Agent>) -> Result<(), String> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let text = serde_json::to_string_pretty(&engine.lock().unwrap().durable())
            .map_err(|e| e.to_string())?;
        if *last == text {
            return Ok(());
        }
        crate::durable::write(&self.path, text.as_bytes())
            .map_err(|e| format!("state file {}: {e}", self.path.display()))?;
        *last = text;
        Ok(())
    }
}
