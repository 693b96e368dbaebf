//! The databases the store runs on, behind one small interface. Statements are written once, in
//! the SQL both SQLite and PostgreSQL read (`INSERT … ON CONFLICT`, quoted `"offset"`), with
//! SQLite's numbered parameters `?1`, `?2`…; for PostgreSQL they become `$1`, `$2`… and SQLite's
//! implicit `rowid` the `seq` column PostgreSQL's tables carry in its place. Rows come back as
//! [`Cell`]s, read by type where they are used, so a damaged row is named, not fatal.

use std::fmt;

/// A statement's parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Text(&'a str),
    OptText(Option<&'a str>),
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::OptInt(v) => v.to_sql(),
            Arg::Text(v) => v.to_sql(),
            Arg::OptText(v) => v.to_sql(),
        }
    }
}

/// A value read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    /// Any other type, described ("a blob": a row a person or another program altered).
    Other(String),
}

impl Cell {
    /// What the value is, for an error message.
    pub(crate) fn kind(&self) -> String {
        match self {
            Cell::Null => "NULL".into(),
            Cell::Int(_) => "an integer".into(),
            Cell::Text(_) => "text".into(),
            Cell::Other(t) => t.clone(),
        }
    }

    pub(crate) fn text(self, what: &str) -> Result<String, DbError> {
        match self {
            Cell::Text(t) => Ok(t),
            other => Err(DbError::Type(format!(
                "{what} is {}, not text",
                other.kind()
            ))),
        }
    }

    pub(crate) fn opt_text(self, what: &str) -> Result<Option<String>, DbError> {
        match self {
            Cell::Null => Ok(None),
            other => other.text(what).map(Some),
        }
    }

    pub(crate) fn int(self, what: &str) -> Result<i64, DbError> {
        match self {
            Cell::Int(v) => Ok(v),
            other => Err(DbError::Type(format!(
                "{what} is {}, not an integer",
                other.kind()
            ))),
        }
    }

    pub(crate) fn opt_int(self, what: &str) -> Result<Option<i64>, DbError> {
        match self {
            Cell::Null => Ok(None),
            other => other.int(what).map(Some),
        }
    }
}

/// A database's error.
#[derive(Debug)]
pub(crate) enum DbError {
    Sqlite(rusqlite::Error),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Error),
    /// A value of the wrong type in a row.
    Type(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sqlite(e)
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbError::Sqlite(e) => e.fmt(f),
            #[cfg(feature = "postgres")]
            DbError::Postgres(e) => e.fmt(f),
            DbError::Type(m) => f.write_str(m),
        }
    }
}

/// A connection to either database.
pub(crate) enum Db {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(Box<std::cell::RefCell<Pg>>),
}

/// A PostgreSQL connection with its prepared statements, by their text.
#[cfg(feature = "postgres")]
pub(crate) struct Pg {
    pub(crate) client: postgres::Client,
    statements: std::collections::HashMap<String, postgres::Statement>,
}

#[cfg(feature = "postgres")]
impl Pg {
    pub(crate) fn new(client: postgres::Client) -> Pg {
        Pg {
            client,
            statements: std::collections::HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(&postgres_sql(sql))?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }
}

/// A statement in SQLite's parameter style as PostgreSQL takes it: `?N` → `$N`, `rowid` → `seq`.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'?' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push('$');
        } else if sql[i..].starts_with("rowid")
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && !b
                .get(i + 5)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            out.push_str("seq");
            i += 5;
            continue;
        } else {
            // Statements are ASCII; anything else is copied a character at a time.
            let c = sql[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(feature = "postgres")]
fn pg_args<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|a| -> &(dyn postgres::types::ToSql + Sync) {
            match a {
                Arg::Int(v) => v,
                Arg::OptInt(v) => v,
                Arg::Text(v) => v,
                Arg::OptText(v) => v,
            }
        })
        .collect()
}

#[cfg(feature = "postgres")]
fn pg_row(row: &postgres::Row) -> Result<Vec<Cell>, DbError> {
    use postgres::types::Type;
    let mut out = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let t = col.type_();
        let cell = if *t == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?
                .map_or(Cell::Null, Cell::Int)
        } else if *t == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map_or(Cell::Null, |v| Cell::Int(v.into()))
        } else if *t == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map_or(Cell::Null, |v| Cell::Int(v.into()))
        } else if *t == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?
                .map_or(Cell::Null, |v| Cell::Int(v.into()))
        } else if *t == Type::TEXT || *t == Type::VARCHAR || *t == Type::NAME {
            row.try_get::<_, Option<String>>(i)?
                .map_or(Cell::Null, Cell::Text)
        } else {
            Cell::Other(format!("a value of type {}", t.name()))
        };
        out.push(cell);
    }
    Ok(out)
}

fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Vec<Cell>> {
    use rusqlite::types::ValueRef;
    let n = r.as_ref().column_count();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(match r.get_ref(i)? {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(v) => Cell::Int(v),
            ValueRef::Text(t) => match std::str::from_utf8(t) {
                Ok(s) => Cell::Text(s.to_owned()),
                Err(_) => Cell::Other("text that is not UTF-8".into()),
            },
            ValueRef::Real(_) => Cell::Other("a number".into()),
            ValueRef::Blob(_) => Cell::Other("a blob".into()),
        });
    }
    Ok(out)
}

impl Db {
    /// Runs statements without parameters (a transaction's start and end, migrations).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => Ok(pg.borrow_mut().client.batch_execute(sql)?),
        }
    }

    /// Runs one statement; returns the rows it changed.
    pub(crate) fn exec(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(args.iter()))? as u64)
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let st = pg.statement(sql)?;
                Ok(pg.client.execute(&st, &pg_args(args))?)
            }
        }
    }

    /// Each row of a query, in order, to `each`, which must not use this connection.
    pub(crate) fn each(
        &self,
        sql: &str,
        args: &[Arg<'_>],
        each: &mut dyn FnMut(Vec<Cell>),
    ) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
                while let Some(r) = rows.next()? {
                    each(sqlite_row(r)?);
                }
                Ok(())
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(pg) => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut pg = pg.borrow_mut();
                let st = pg.statement(sql)?;
                let mut rows = pg.client.query_raw(&st, pg_args(args))?;
                while let Some(r) = rows.next()? {
                    each(pg_row(&r)?);
                }
                Ok(())
            }
        }
    }

    /// A PostgreSQL statement with typed parameters (arrays, for statements over a whole
    /// batch): its rows' first columns as text. `None` on SQLite.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg_texts(
        &self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Option<Result<Vec<String>, DbError>> {
        let Db::Postgres(pg) = self else {
            return None;
        };
        let run = || -> Result<Vec<String>, DbError> {
            let mut pg = pg.borrow_mut();
            let st = pg.statement(sql)?;
            let rows = pg.client.query(&st, params)?;
            rows.iter()
                .map(|r| Ok(r.try_get::<_, String>(0)?))
                .collect()
        };
        Some(run())
    }

    /// Every row of a query.
    pub(crate) fn rows(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<Vec<Cell>>, DbError> {
        let mut out = Vec::new();
        self.each(sql, args, &mut |r| out.push(r))?;
        Ok(out)
    }

    /// The first row of a query, if any.
    pub(crate) fn first(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<Vec<Cell>>, DbError> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// The first column of the first row (a count, an existence test).
    pub(crate) fn one(&self, sql: &str, args: &[Arg<'_>]) -> Result<Cell, DbError> {
        Ok(self
            .first(sql, args)?
            .and_then(|r| r.into_iter().next())
            .unwrap_or(Cell::Null))
    }

    /// Starts a transaction that will write: SQLite takes its write lock now (waiting up to
    /// the busy timeout), PostgreSQL locks rows as they are written.
    pub(crate) fn begin_write(&self) -> Result<Tx<'_>, DbError> {
        self.batch(match self {
            Db::Sqlite(_) => "BEGIN IMMEDIATE",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => "BEGIN",
        })?;
        Ok(Tx {
            db: self,
            done: false,
        })
    }
}

/// An open transaction, rolled back if dropped before [`Tx::commit`].
pub(crate) struct Tx<'a> {
    db: &'a Db,
    done: bool,
}

impl Tx<'_> {
    pub(crate) fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        self.db.batch("COMMIT")
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            // A failed rollback leaves nothing to do: the connection's transaction ends with it.
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_rewritten_for_postgres() {
        assert_eq!(
            postgres_sql("SELECT rowid, id FROM t WHERE a = ?1 AND b < ?12 ORDER BY t.rowid"),
            "SELECT seq, id FROM t WHERE a = $1 AND b < $12 ORDER BY t.seq"
        );
        // Only the word: a column named `rowids` or `my_rowid` stays, and a lone `?` too.
        assert_eq!(
            postgres_sql("SELECT rowids, my_rowid, '?' FROM t"),
            "SELECT rowids, my_rowid, '?' FROM t"
        );
        assert_eq!(postgres_sql("É ?1"), "É $1");
    }
}
