//! One SQL connection, SQLite (a file path, the default) or PostgreSQL (a
//! `postgres://` or `postgresql://` URL), behind one small interface:
//! statements with `?1`-style placeholders (rewritten to `$1` for
//! PostgreSQL) and untyped rows. The SQL itself must be valid in both
//! dialects (`INSERT ... ON CONFLICT`, `excluded.`, `BIGINT`).
//!
//! The PostgreSQL client blocks on a runtime of its own: on a daemon's
//! multi-thread runtime each call leaves the async context first
//! (`block_in_place`), as the presence store's calls do.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Text(String),
    Int(i64),
    Null,
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.into())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<&String> for Value {
    fn from(s: &String) -> Self {
        Value::Text(s.clone())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

#[derive(Debug)]
pub struct SqlError(String);

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for SqlError {}
impl From<rusqlite::Error> for SqlError {
    fn from(e: rusqlite::Error) -> Self {
        SqlError(format!("sqlite: {e}"))
    }
}
impl From<postgres::Error> for SqlError {
    fn from(e: postgres::Error) -> Self {
        SqlError(format!("postgresql: {e}"))
    }
}

pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

pub fn is_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

/// Run `f` where a blocking client may block (off the async context).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// `?1` → `$1` (our statements hold no `?` in literals).
fn dollars(sql: &str) -> String {
    sql.replace('?', "$")
}

impl Db {
    pub fn open(database: &str) -> Result<Self, SqlError> {
        if is_url(database) {
            let c = blocking(|| postgres::Client::connect(database, postgres::NoTls))?;
            return Ok(Db::Postgres(Box::new(c)));
        }
        Ok(Db::Sqlite(rusqlite::Connection::open(database)?))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }

    /// Statements without parameters, `;`-separated.
    pub fn batch(&mut self, sql: &str) -> Result<(), SqlError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(c) => Ok(blocking(|| c.batch_execute(sql))?),
        }
    }

    /// One statement; the rows it changed.
    pub fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, SqlError> {
        match self {
            Db::Sqlite(c) => {
                let params: Vec<rusqlite::types::Value> = args.iter().map(to_sqlite).collect();
                Ok(c.execute(sql, rusqlite::params_from_iter(params))? as u64)
            }
            Db::Postgres(c) => {
                let owned = pg_args(args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                Ok(blocking(|| c.execute(dollars(sql).as_str(), &refs))?)
            }
        }
    }

    /// The rows of a query, each column as text, integer or null.
    pub fn rows(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Vec<Value>>, SqlError> {
        match self {
            Db::Sqlite(c) => {
                let params: Vec<rusqlite::types::Value> = args.iter().map(to_sqlite).collect();
                let mut q = c.prepare(sql)?;
                let n = q.column_count();
                let rows = q.query_map(rusqlite::params_from_iter(params), |r| {
                    (0..n)
                        .map(|i| {
                            Ok(match r.get::<_, rusqlite::types::Value>(i)? {
                                rusqlite::types::Value::Text(s) => Value::Text(s),
                                rusqlite::types::Value::Integer(i) => Value::Int(i),
                                rusqlite::types::Value::Real(f) => Value::Text(f.to_string()),
                                _ => Value::Null,
                            })
                        })
                        .collect::<rusqlite::Result<Vec<Value>>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<_>>()?)
            }
            Db::Postgres(c) => {
                let owned = pg_args(args);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    owned.iter().map(|b| b.as_ref()).collect();
                let rows = blocking(|| c.query(dollars(sql).as_str(), &refs))?;
                rows.iter()
                    .map(|r| {
                        (0..r.len())
                            .map(|i| {
                                use postgres::types::Type;
                                let t = r.columns()[i].type_().clone();
                                Ok(if t == Type::INT8 {
                                    r.try_get::<_, Option<i64>>(i)?.map(Value::Int)
                                } else if t == Type::INT4 {
                                    r.try_get::<_, Option<i32>>(i)?
                                        .map(|v| Value::Int(v.into()))
                                } else {
                                    r.try_get::<_, Option<String>>(i)?.map(Value::Text)
                                }
                                .unwrap_or(Value::Null))
                            })
                            .collect::<Result<Vec<Value>, SqlError>>()
                    })
                    .collect()
            }
        }
    }
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Null => rusqlite::types::Value::Null,
    }
}

fn pg_args(args: &[Value]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    args.iter()
        .map(|v| -> Box<dyn postgres::types::ToSql + Sync> {
            match v {
                Value::Text(s) => Box::new(s.clone()),
                Value::Int(i) => Box::new(*i),
                Value::Null => Box::new(None::<String>),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_and_rows_come_back_typed() {
        assert_eq!(
            dollars("SELECT a FROM t WHERE x = ?1 AND y = ?2"),
            "SELECT a FROM t WHERE x = $1 AND y = $2"
        );
        let mut db = Db::Sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.batch("CREATE TABLE t (name TEXT PRIMARY KEY, n BIGINT, note TEXT)")
            .unwrap();
        let ins = "INSERT INTO t VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING";
        assert_eq!(
            db.exec(ins, &["a".into(), 1i64.into(), Value::Null])
                .unwrap(),
            1
        );
        assert_eq!(
            db.exec(ins, &["a".into(), 2i64.into(), Value::Null])
                .unwrap(),
            0
        );
        let rows = db
            .rows("SELECT name, n, note FROM t WHERE name = ?1", &["a".into()])
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![Value::Text("a".into()), Value::Int(1), Value::Null]]
        );
    }
}
