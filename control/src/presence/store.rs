//! The presence server's store, which keeps every terminal's statuses
//! consistent (claims 4-5, 23): SQLite, or PostgreSQL.

use std::path::Path;

use rusqlite::{params, Connection};
use serde::Serialize;

use super::document::status_name;
use crate::sip_monitor::track::Status;

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Row {
    pub user: String,
    pub source: String,
    pub status: String,
    pub updated: f64,
    /// When the publication that set it lapses unless refreshed (unix
    /// seconds; RFC 3903 §4.1); none for a final status (offline).
    #[serde(default)]
    pub expires: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct HistoryRow {
    pub user: String,
    pub source: String,
    pub status: String,
    pub at: f64,
    /// "published", "reconciled" or "expired".
    pub cause: String,
}

/// Store errors, from either database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgresql: {0}")]
    Postgres(#[from] postgres::Error),
    /// A status for a (user, source) pair the store does not hold yet,
    /// when it holds `max` (presence.max_statuses): nothing was written.
    #[error("the store is full: it holds {max} statuses (presence.max_statuses); a new user or source is refused, the ones it holds are updated as before")]
    Full { max: u64 },
    /// An entity-tag for a new publication when the store holds `max`
    /// live ones (presence.max_etags): none issued.
    #[error("the store is full: it holds {max} live entity-tags (presence.max_etags); a new publication is refused, refreshes are taken as before")]
    EtagsFull { max: u64 },
}

enum Db {
    Sqlite(Connection),
    Postgres(Box<postgres::Client>),
}

/// The presence store: SQLite by default, PostgreSQL when the database is
/// a `postgres://` or `postgresql://` URL. One schema, one behaviour.
pub struct Store {
    db: Db,
    /// Statuses (rows of `status`: one per user and source) at most; a
    /// new pair beyond it is refused (`StoreError::Full`).
    max_statuses: u64,
    /// Live entity-tags at most (`StoreError::EtagsFull` past it).
    max_etags: u64,
    /// History rows kept at most; the oldest go first.
    max_history: u64,
    /// History rows this store deleted to keep `max_history`.
    history_pruned: u64,
}

/// `presence.max_statuses` when not configured.
pub const DEFAULT_MAX_STATUSES: u64 = 1_000_000;
/// `presence.max_etags` when not configured (two publications' worth a
/// status).
pub const DEFAULT_MAX_ETAGS: u64 = 2_000_000;
/// `presence.max_history` when not configured.
pub const DEFAULT_MAX_HISTORY: u64 = 10_000_000;

/// Deletes the history rows past the newest `$1` (ids only grow; a gap
/// in them leaves fewer rows, never more).
const PRUNE_HISTORY: &str = "DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - $1";

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS status (user_aor TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL, expires DOUBLE PRECISION, PRIMARY KEY (user_aor, source));
     CREATE TABLE IF NOT EXISTS history (id BIGSERIAL_OR_INTEGER PRIMARY KEY, user_aor TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, cause TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS etag (etag TEXT PRIMARY KEY, user_aor TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL);";

/// How many rows `status` and `etag` hold, kept by triggers in the
/// transaction that changes them, so the bounds are checked without
/// counting the tables (a count is linear: 1.2 ms at 100,000 statuses,
/// paid by every new terminal).
const ROW_COUNT: &str =
    "CREATE TABLE IF NOT EXISTS row_count (tbl TEXT PRIMARY KEY, n BIGINT NOT NULL)";
const SQLITE_COUNTERS: &str = "CREATE TRIGGER IF NOT EXISTS status_added AFTER INSERT ON status BEGIN UPDATE row_count SET n = n + 1 WHERE tbl = 'status'; END;
     CREATE TRIGGER IF NOT EXISTS status_removed AFTER DELETE ON status BEGIN UPDATE row_count SET n = n - 1 WHERE tbl = 'status'; END;
     CREATE TRIGGER IF NOT EXISTS etag_added AFTER INSERT ON etag BEGIN UPDATE row_count SET n = n + 1 WHERE tbl = 'etag'; END;
     CREATE TRIGGER IF NOT EXISTS etag_removed AFTER DELETE ON etag BEGIN UPDATE row_count SET n = n - 1 WHERE tbl = 'etag'; END;
     INSERT OR IGNORE INTO row_count SELECT 'status', COUNT(*) FROM status;
     INSERT OR IGNORE INTO row_count SELECT 'etag', COUNT(*) FROM etag;";
const POSTGRES_COUNTERS: &str = "LOCK TABLE status, etag IN EXCLUSIVE MODE;
     CREATE OR REPLACE FUNCTION edgeplane_count_rows() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'INSERT' THEN UPDATE row_count SET n = n + 1 WHERE tbl = TG_TABLE_NAME; ELSE UPDATE row_count SET n = n - 1 WHERE tbl = TG_TABLE_NAME; END IF; RETURN NULL; END $$;
     CREATE OR REPLACE TRIGGER status_count AFTER INSERT OR DELETE ON status FOR EACH ROW EXECUTE FUNCTION edgeplane_count_rows();
     CREATE OR REPLACE TRIGGER etag_count AFTER INSERT OR DELETE ON etag FOR EACH ROW EXECUTE FUNCTION edgeplane_count_rows();
     INSERT INTO row_count SELECT 'status', COUNT(*) FROM status ON CONFLICT DO NOTHING;
     INSERT INTO row_count SELECT 'etag', COUNT(*) FROM etag ON CONFLICT DO NOTHING;";
const COUNT_OF: &str = "SELECT n FROM row_count WHERE tbl = $1";

/// The PostgreSQL advisory lock (an arbitrary key) taken to add a status.
const NEW_STATUS_LOCK: i64 = 0x0073_7461_7475_7365;

/// After `SCHEMA`: the index the expiry sweep reads (a database made
/// before statuses expired gets the column first).
const EXPIRY_INDEX: &str = "CREATE INDEX IF NOT EXISTS status_expires ON status (expires); CREATE INDEX IF NOT EXISTS etag_expires ON etag (expires)";

/// A fresh entity-tag: 16 random octets in hex, unique across the servers
/// that share a database.
fn new_etag() -> String {
    use std::io::Read as _;
    let mut b = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_err()
    {
        // No urandom: the clock and the process, still unique enough for
        // one deployment.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..8].copy_from_slice(&(t as u64).to_le_bytes());
        b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Store {
    /// `database`: a file path (SQLite) or a PostgreSQL URL.
    pub fn open_url(database: &str) -> Result<Self, StoreError> {
        if database.starts_with("postgres://") || database.starts_with("postgresql://") {
            let mut c = postgres::Client::connect(database, postgres::NoTls)?;
            c.batch_execute(&SCHEMA.replace("BIGSERIAL_OR_INTEGER", "BIGSERIAL"))?;
            c.batch_execute(
                "ALTER TABLE status ADD COLUMN IF NOT EXISTS expires DOUBLE PRECISION",
            )?;
            c.batch_execute(EXPIRY_INDEX)?;
            c.batch_execute(ROW_COUNT)?;
            // The triggers and the first counts in one transaction, the
            // tables locked against writers, so no change falls between.
            let mut tx = c.transaction()?;
            tx.batch_execute(POSTGRES_COUNTERS)?;
            tx.commit()?;
            return Ok(Self::limited(Db::Postgres(Box::new(c))));
        }
        Ok(Self::open(Path::new(database))?)
    }

    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        Self::with(Connection::open(path)?)
    }

    pub fn in_memory() -> rusqlite::Result<Self> {
        Self::with(Connection::open_in_memory()?)
    }

    fn with(db: Connection) -> rusqlite::Result<Self> {
        // WAL with synchronous=NORMAL: a commit is not flushed to disk
        // on its own (the WAL is, at checkpoints), so a crash of the
        // process loses nothing and a power loss at most the last
        // commits; flushing each PUBLISH's commit capped the server at a
        // few hundred a second.
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
        db.execute_batch(&SCHEMA.replace("BIGSERIAL_OR_INTEGER", "INTEGER"))?;
        let has: i64 = db.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('status') WHERE name = 'expires'",
            [],
            |r| r.get(0),
        )?;
        if has == 0 {
            db.execute_batch("ALTER TABLE status ADD COLUMN expires DOUBLE PRECISION")?;
        }
        db.execute_batch(EXPIRY_INDEX)?;
        db.execute_batch(ROW_COUNT)?;
        // One write transaction: no other writer between the counts and
        // the triggers.
        db.execute_batch(&format!("BEGIN IMMEDIATE; {SQLITE_COUNTERS} COMMIT;"))?;
        Ok(Self::limited(Db::Sqlite(db)))
    }

    fn limited(db: Db) -> Self {
        Self {
            db,
            max_statuses: DEFAULT_MAX_STATUSES,
            max_etags: DEFAULT_MAX_ETAGS,
            max_history: DEFAULT_MAX_HISTORY,
            history_pruned: 0,
        }
    }

    /// The bound on live entity-tags (`presence.max_etags`).
    pub fn set_max_etags(&mut self, max: u64) {
        self.max_etags = max;
    }

    /// The bound on history rows (`presence.max_history`); a lower one
    /// takes effect at the next change.
    pub fn set_max_history(&mut self, max: u64) {
        self.max_history = max;
    }

    pub fn max_etags(&self) -> u64 {
        self.max_etags
    }

    /// History rows deleted so far to keep `max_history`.
    pub fn history_pruned(&self) -> u64 {
        self.history_pruned
    }

    /// How many entity-tags the store holds (live or not yet purged).
    pub fn etags(&mut self) -> Result<u64, StoreError> {
        self.count_of("etag")
    }

    /// `row_count`'s count of `tbl`.
    fn count_of(&mut self, tbl: &str) -> Result<u64, StoreError> {
        Ok(match &mut self.db {
            Db::Sqlite(db) => db.query_row(COUNT_OF, [tbl], |r| r.get::<_, i64>(0))?,
            Db::Postgres(c) => c.query_one(COUNT_OF, &[&tbl])?.get::<_, i64>(0),
        } as u64)
    }

    /// Whether an entity-tag for a new publication could be issued at
    /// `now`: the store holds fewer than `max_etags` live ones (the
    /// expired are purged first). Asked before a new publication is
    /// stored, so a refusal writes nothing.
    pub fn etag_room(&mut self, now: f64) -> Result<bool, StoreError> {
        let max = self.max_etags as i64;
        Ok(match &mut self.db {
            Db::Sqlite(db) => {
                db.execute("DELETE FROM etag WHERE expires <= ?1", params![now])?;
                db.query_row(COUNT_OF, ["etag"], |r| r.get::<_, i64>(0))? < max
            }
            Db::Postgres(c) => {
                c.execute("DELETE FROM etag WHERE expires <= $1", &[&now])?;
                c.query_one(COUNT_OF, &[&"etag"])?.get::<_, i64>(0) < max
            }
        })
    }

    /// The bound on statuses (`presence.max_statuses`); a store that holds
    /// more already (the bound lowered) keeps them and takes no new pair.
    pub fn set_max_statuses(&mut self, max: u64) {
        self.max_statuses = max;
    }

    pub fn max_statuses(&self) -> u64 {
        self.max_statuses
    }

    /// How many statuses the store holds.
    pub fn statuses(&mut self) -> Result<u64, StoreError> {
        self.count_of("status")
    }

    /// Store an update from `source`, its publication valid `until`
    /// (none: a final status); then every other status held for the same
    /// user that disagrees is rewritten to agree (claims 4-5, 23).
    /// Returns how many were rewritten. A pair the store does not hold
    /// yet is refused when it holds `max_statuses` (`StoreError::Full`,
    /// nothing written); the pairs it holds are updated whatever the count.
    pub fn apply(
        &mut self,
        user: &str,
        source: &str,
        status: Status,
        at: f64,
        until: Option<f64>,
    ) -> Result<usize, StoreError> {
        let st = status_name(status);
        let max = self.max_statuses;
        match &mut self.db {
            Db::Sqlite(db) => {
                // A writer on the same file between the count and the
                // insert fails this transaction (WAL snapshot), so the
                // bound holds.
                let tx = db.transaction()?;
                let known = tx.query_row(
                    "SELECT COUNT(*) FROM status WHERE user_aor = ?1 AND source = ?2",
                    params![user, source],
                    |r| r.get::<_, i64>(0),
                )? > 0;
                if !known {
                    let n: i64 = tx.query_row(COUNT_OF, ["status"], |r| r.get(0))?;
                    if n as u64 >= max {
                        return Err(StoreError::Full { max });
                    }
                }
                tx.execute(
                    "INSERT INTO status (user_aor, source, status, updated, expires) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_aor, source) DO UPDATE SET status = ?3, updated = ?4, expires = ?5",
                    params![user, source, st, at, until],
                )?;
                tx.execute("INSERT INTO history (user_aor, source, status, at, cause) VALUES (?1, ?2, ?3, ?4, 'published')", params![user, source, st, at])?;
                let others: Vec<String> = {
                    let mut q = tx.prepare("SELECT source FROM status WHERE user_aor = ?1 AND source != ?2 AND status != ?3")?;
                    let rows = q.query_map(params![user, source, st], |r| r.get(0))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for o in &others {
                    tx.execute("UPDATE status SET status = ?3, updated = ?4 WHERE user_aor = ?1 AND source = ?2", params![user, o, st, at])?;
                    tx.execute("INSERT INTO history (user_aor, source, status, at, cause) VALUES (?1, ?2, ?3, ?4, 'reconciled')", params![user, o, st, at])?;
                }
                let pruned = tx.execute(PRUNE_HISTORY, params![self.max_history as i64])?;
                tx.commit()?;
                self.history_pruned += pruned as u64;
                Ok(others.len())
            }
            Db::Postgres(c) => {
                let mut tx = c.transaction()?;
                let known = tx
                    .query_one(
                        "SELECT COUNT(*) FROM status WHERE user_aor = $1 AND source = $2",
                        &[&user, &source],
                    )?
                    .get::<_, i64>(0)
                    > 0;
                if !known {
                    // New pairs one at a time over every server of the
                    // database, so the count holds until the insert.
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&NEW_STATUS_LOCK])?;
                    let n: i64 = tx.query_one(COUNT_OF, &[&"status"])?.get(0);
                    if n as u64 >= max {
                        return Err(StoreError::Full { max });
                    }
                }
                tx.execute(
                    "INSERT INTO status (user_aor, source, status, updated, expires) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_aor, source) DO UPDATE SET status = $3, updated = $4, expires = $5",
                    &[&user, &source, &st, &at, &until],
                )?;
                tx.execute("INSERT INTO history (user_aor, source, status, at, cause) VALUES ($1, $2, $3, $4, 'published')", &[&user, &source, &st, &at])?;
                let others: Vec<String> = tx
                    .query("SELECT source FROM status WHERE user_aor = $1 AND source != $2 AND status != $3", &[&user, &source, &st])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                for o in &others {
                    tx.execute("UPDATE status SET status = $3, updated = $4 WHERE user_aor = $1 AND source = $2", &[&user, o, &st, &at])?;
                    tx.execute("INSERT INTO history (user_aor, source, status, at, cause) VALUES ($1, $2, $3, $4, 'reconciled')", &[&user, o, &st, &at])?;
                }
                let pruned = tx.execute(PRUNE_HISTORY, &[&(self.max_history as i64)])?;
                tx.commit()?;
                self.history_pruned += pruned;
                Ok(others.len())
            }
        }
    }

    /// Whether `etag` was issued for `user` (by any server on this
    /// database) and has not expired at `now` (unix seconds).
    pub fn etag_valid(&mut self, etag: &str, user: &str, now: f64) -> Result<bool, StoreError> {
        Ok(match &mut self.db {
            Db::Sqlite(db) => {
                db.query_row(
                    "SELECT COUNT(*) FROM etag WHERE etag = ?1 AND user_aor = ?2 AND expires > ?3",
                    params![etag, user, now],
                    |r| r.get::<_, i64>(0),
                )? > 0
            }
            Db::Postgres(c) => {
                c.query_one(
                    "SELECT COUNT(*) FROM etag WHERE etag = $1 AND user_aor = $2 AND expires > $3",
                    &[&etag, &user, &now],
                )?
                .get::<_, i64>(0)
                    > 0
            }
        })
    }

    /// Issue a new entity-tag for `user`, valid until `expires`; with
    /// `replaces`, that one stops being valid (RFC 3903 §4.1), and `None`
    /// comes back if it already was not (consumed by another request,
    /// expired): the caller answers 412. Expired tags are purged. A tag
    /// for a new publication (no `replaces`) is refused when the store
    /// holds `max_etags` live ones (`StoreError::EtagsFull`, none issued).
    pub fn etag_issue(
        &mut self,
        user: &str,
        replaces: Option<&str>,
        now: f64,
        expires: f64,
    ) -> Result<Option<String>, StoreError> {
        let e = new_etag();
        let max = self.max_etags;
        match &mut self.db {
            Db::Sqlite(db) => {
                let tx = db.transaction()?;
                if let Some(old) = replaces {
                    let n = tx.execute(
                        "DELETE FROM etag WHERE etag = ?1 AND user_aor = ?2 AND expires > ?3",
                        params![old, user, now],
                    )?;
                    if n == 0 {
                        return Ok(None);
                    }
                }
                tx.execute("DELETE FROM etag WHERE expires <= ?1", params![now])?;
                if replaces.is_none()
                    && tx.query_row(COUNT_OF, ["etag"], |r| r.get::<_, i64>(0))? >= max as i64
                {
                    return Err(StoreError::EtagsFull { max });
                }
                tx.execute(
                    "INSERT INTO etag (etag, user_aor, expires) VALUES (?1, ?2, ?3)",
                    params![e, user, expires],
                )?;
                tx.commit()?;
            }
            Db::Postgres(c) => {
                let mut tx = c.transaction()?;
                if let Some(old) = replaces {
                    let n = tx.execute(
                        "DELETE FROM etag WHERE etag = $1 AND user_aor = $2 AND expires > $3",
                        &[&old, &user, &now],
                    )?;
                    if n == 0 {
                        return Ok(None);
                    }
                }
                tx.execute("DELETE FROM etag WHERE expires <= $1", &[&now])?;
                if replaces.is_none()
                    && tx.query_one(COUNT_OF, &[&"etag"])?.get::<_, i64>(0) >= max as i64
                {
                    return Err(StoreError::EtagsFull { max });
                }
                tx.execute(
                    "INSERT INTO etag (etag, user_aor, expires) VALUES ($1, $2, $3)",
                    &[&e, &user, &expires],
                )?;
                tx.commit()?;
            }
        }
        Ok(Some(e))
    }

    /// A refresh (RFC 3903 §4.3): `source`'s publication for `user` now
    /// lasts `until`. False when it holds no status for them.
    pub fn refresh(&mut self, user: &str, source: &str, until: f64) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE status SET expires = $1 WHERE user_aor = $2 AND source = $3 AND expires IS NOT NULL";
        Ok(match &mut self.db {
            Db::Sqlite(db) => db.execute(SQL, params![until, user, source])?,
            Db::Postgres(c) => c.execute(SQL, &[&until, &user, &source])? as usize,
        } > 0)
    }

    /// Publications whose lifetime passed by `now` without a refresh: the
    /// statuses they set turn offline (history cause "expired"), final,
    /// so none stays online or talking for a monitor that went away.
    /// Returns the users whose status changed. Reads only the rows due.
    pub fn expire(&mut self, now: f64) -> Result<Vec<String>, StoreError> {
        const DUE: &str =
            "SELECT user_aor, source, status FROM status WHERE expires IS NOT NULL AND expires <= $1";
        const LAPSE: &str = "UPDATE status SET status = 'offline', updated = $1, expires = NULL WHERE user_aor = $2 AND source = $3";
        const NOTE: &str = "INSERT INTO history (user_aor, source, status, at, cause) VALUES ($1, $2, 'offline', $3, 'expired')";
        let offline = status_name(Status::Offline);
        let mut users = Vec::new();
        match &mut self.db {
            Db::Sqlite(db) => {
                let tx = db.transaction()?;
                let due: Vec<(String, String, String)> = {
                    let mut q = tx.prepare(DUE)?;
                    let rows =
                        q.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    rows.collect::<rusqlite::Result<_>>()?
                };
                for (user, source, status) in due {
                    tx.execute(LAPSE, params![now, user, source])?;
                    if status != offline {
                        tx.execute(NOTE, params![user, source, now])?;
                        users.push(user);
                    }
                }
                let pruned = tx.execute(PRUNE_HISTORY, params![self.max_history as i64])?;
                tx.commit()?;
                self.history_pruned += pruned as u64;
            }
            Db::Postgres(c) => {
                let mut tx = c.transaction()?;
                let due: Vec<(String, String, String)> = tx
                    .query(DUE, &[&now])?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                for (user, source, status) in due {
                    tx.execute(LAPSE, &[&now, &user, &source])?;
                    if status != offline {
                        tx.execute(NOTE, &[&user, &source, &now])?;
                        users.push(user);
                    }
                }
                let pruned = tx.execute(PRUNE_HISTORY, &[&(self.max_history as i64)])?;
                tx.commit()?;
                self.history_pruned += pruned;
            }
        }
        users.dedup();
        Ok(users)
    }

    pub fn show(&mut self, user: Option<&str>) -> Result<Vec<Row>, StoreError> {
        match &mut self.db {
            Db::Sqlite(db) => {
                let mut q = db.prepare("SELECT user_aor, source, status, updated, expires FROM status WHERE (?1 IS NULL OR user_aor = ?1) ORDER BY user_aor, source")?;
                let rows = q.query_map(params![user], |r| Ok(Row { user: r.get(0)?, source: r.get(1)?, status: r.get(2)?, updated: r.get(3)?, expires: r.get(4)? }))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Db::Postgres(c) => Ok(c
                .query("SELECT user_aor, source, status, updated, expires FROM status WHERE ($1::TEXT IS NULL OR user_aor = $1) ORDER BY user_aor, source", &[&user])?
                .iter()
                .map(|r| Row { user: r.get(0), source: r.get(1), status: r.get(2), updated: r.get(3), expires: r.get(4) })
                .collect()),
        }
    }

    pub fn history(&mut self, user: &str) -> Result<Vec<HistoryRow>, StoreError> {
        match &mut self.db {
            Db::Sqlite(db) => {
                let mut q = db.prepare("SELECT user_aor, source, status, at, cause FROM history WHERE user_aor = ?1 ORDER BY id")?;
                let rows = q.query_map(params![user], |r| Ok(HistoryRow { user: r.get(0)?, source: r.get(1)?, status: r.get(2)?, at: r.get(3)?, cause: r.get(4)? }))?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Db::Postgres(c) => Ok(c
                .query("SELECT user_aor, source, status, at, cause FROM history WHERE user_aor = $1 ORDER BY id", &[&user])?
                .iter()
                .map(|r| HistoryRow { user: r.get(0), source: r.get(1), status: r.get(2), at: r.get(3), cause: r.get(4) })
                .collect()),
        }
    }
}

/// The store's behaviour, run against any backend (the unit test runs it
/// on SQLite, the PostgreSQL test on a private server).
pub fn check_store(s: &mut Store) -> Result<(), String> {
    let e = |x: StoreError| x.to_string();
    s.apply("alice@example.com", "monitor-1", Status::Online, 1.0, None)
        .map_err(e)?;
    s.apply("alice@example.com", "monitor-2", Status::Online, 2.0, None)
        .map_err(e)?;
    s.apply("bob@example.com", "monitor-1", Status::Online, 2.5, None)
        .map_err(e)?;
    // monitor-1 sees alice talking: monitor-2's "online" is rewritten.
    if s.apply("alice@example.com", "monitor-1", Status::Talking, 3.0, None)
        .map_err(e)?
        != 1
    {
        return Err("one disagreeing status should be rewritten".into());
    }
    let rows = s.show(Some("alice@example.com")).map_err(e)?;
    if rows.len() != 2 || !rows.iter().all(|r| r.status == "talking") {
        return Err(format!("not reconciled: {rows:?}"));
    }
    if s.show(Some("bob@example.com")).map_err(e)?[0].status != "online" {
        return Err("another user was touched".into());
    }
    if s.show(None).map_err(e)?.len() != 3 {
        return Err("show all".into());
    }
    let h: Vec<(String, String, String)> = s
        .history("alice@example.com")
        .map_err(e)?
        .into_iter()
        .map(|r| (r.source, r.status, r.cause))
        .collect();
    let want: Vec<(String, String, String)> = [
        ("monitor-1", "online", "published"),
        ("monitor-2", "online", "published"),
        ("monitor-1", "talking", "published"),
        ("monitor-2", "talking", "reconciled"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    if h != want {
        return Err(format!("history {h:?}"));
    }
    if s.apply("alice@example.com", "monitor-2", Status::Talking, 4.0, None)
        .map_err(e)?
        != 0
    {
        return Err("agreeing statuses must be left alone".into());
    }
    // Entity-tags: issued, valid for their user until they expire,
    // replaced once.
    let a = s
        .etag_issue("alice@example.com", None, 10.0, 70.0)
        .map_err(e)?
        .ok_or("issue")?;
    if !s.etag_valid(&a, "alice@example.com", 11.0).map_err(e)? {
        return Err("a fresh tag is valid".into());
    }
    if s.etag_valid(&a, "bob@example.com", 11.0).map_err(e)?
        || s.etag_valid(&a, "alice@example.com", 70.0).map_err(e)?
    {
        return Err("a tag is another user's or expired".into());
    }
    let b = s
        .etag_issue("alice@example.com", Some(&a), 12.0, 72.0)
        .map_err(e)?
        .ok_or("replace")?;
    if a == b || s.etag_valid(&a, "alice@example.com", 13.0).map_err(e)? {
        return Err("the replaced tag is gone".into());
    }
    if s.etag_issue("alice@example.com", Some(&a), 13.0, 73.0)
        .map_err(e)?
        .is_some()
    {
        return Err("a tag is replaced only once".into());
    }
    if !s.etag_valid(&b, "alice@example.com", 13.0).map_err(e)? {
        return Err("the new tag is valid".into());
    }
    // Publications lapse: carol's online until 100 is refreshed to 200,
    // dave's talking until 150 is not; erin's offline is final.
    let lapsed = |s: &mut Store, u: &str| -> Result<(String, Option<f64>), String> {
        let r = s.show(Some(u)).map_err(e)?;
        let r = r.first().ok_or(format!("{u} missing"))?;
        Ok((r.status.clone(), r.expires))
    };
    s.apply("carol@example.com", "m", Status::Online, 40.0, Some(100.0))
        .map_err(e)?;
    s.apply("dave@example.com", "m", Status::Talking, 50.0, Some(150.0))
        .map_err(e)?;
    s.apply("erin@example.com", "m", Status::Offline, 60.0, None)
        .map_err(e)?;
    if !s.refresh("carol@example.com", "m", 200.0).map_err(e)?
        || s.refresh("carol@example.com", "other", 200.0).map_err(e)?
        || s.refresh("erin@example.com", "m", 200.0).map_err(e)?
    {
        return Err("a refresh extends only a live publication of that source".into());
    }
    if !s.expire(149.0).map_err(e)?.is_empty() {
        return Err("nothing is due before 150".into());
    }
    if s.expire(150.0).map_err(e)? != vec!["dave@example.com".to_string()] {
        return Err("dave's publication lapses at 150".into());
    }
    if lapsed(s, "dave@example.com")? != ("offline".into(), None)
        || lapsed(s, "carol@example.com")? != ("online".into(), Some(200.0))
        || lapsed(s, "erin@example.com")? != ("offline".into(), None)
    {
        return Err("dave offline and final, carol still online until 200".into());
    }
    let last = s
        .history("dave@example.com")
        .map_err(e)?
        .pop()
        .ok_or("history")?;
    if (last.status.as_str(), last.cause.as_str(), last.at) != ("offline", "expired", 150.0) {
        return Err(format!("the lapse is in the history: {last:?}"));
    }
    if !s.expire(150.0).map_err(e)?.is_empty() {
        return Err("a lapse happens once".into());
    }
    if s.expire(200.0).map_err(e)? != vec!["carol@example.com".to_string()] {
        return Err("carol lapses at 200".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_rewrites_the_disagreeing_statuses_and_keeps_history() {
        check_store(&mut Store::in_memory().unwrap()).unwrap();
    }

    /// A database from before statuses expired opens: its rows are kept,
    /// final, and new publications lapse.
    #[test]
    fn a_database_without_expiry_gets_the_column() {
        let db = Connection::open_in_memory().unwrap();
        db.execute_batch(
            "CREATE TABLE status (user_aor TEXT NOT NULL, source TEXT NOT NULL, status TEXT NOT NULL, updated DOUBLE PRECISION NOT NULL, PRIMARY KEY (user_aor, source));
             INSERT INTO status VALUES ('old@example.com', 'm', 'online', 1.0);",
        )
        .unwrap();
        let mut s = Store::with(db).unwrap();
        let rows = s.show(None).unwrap();
        assert_eq!((rows[0].status.as_str(), rows[0].expires), ("online", None));
        assert_eq!(s.statuses().unwrap(), 1, "the rows it had are counted");
        s.apply("new@example.com", "m", Status::Online, 2.0, Some(5.0))
            .unwrap();
        s.apply("new@example.com", "m", Status::Talking, 3.0, Some(5.0))
            .unwrap();
        assert_eq!(s.statuses().unwrap(), 2, "an update adds no row");
        assert_eq!(s.expire(5.0).unwrap(), vec!["new@example.com".to_string()]);
        assert_eq!(s.show(Some("old@example.com")).unwrap()[0].status, "online");
    }
}
