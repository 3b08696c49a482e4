//! [`RedisStore`]: the [`Store`] on Redis (feature `redis`).

use std::fmt;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};
use time::OffsetDateTime;

use super::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};

/// The [`Store`] on Redis: made for the short-lived records that many nodes share (pending
/// logins, link tickets, visitor token ids, refresh leases), usually behind a
/// [`SplitStore`](super::SplitStore) that keeps the durable ones in a
/// [`SqlStore`](super::SqlStore).
///
/// It is a whole store, and passes the whole conformance suite on its own: a split by namespace
/// then needs no special case, and a deployment that runs Redis with persistence it trusts
/// (AOF, `appendfsync always`) may keep everything there. Without such persistence a Redis
/// restart loses what it held: only short-lived records should live there.
///
/// # Layout
///
/// All keys start with a prefix, by default `{cxsso}` (a hash tag: every key lands in one
/// Cluster slot, which the scripts need).
///
/// - a record is a hash `<prefix>:r:<namespace length>:<namespace>:<key>` with the fields `v`
///   (value), `n` (version), `e` (expiry, Unix microseconds) and `x` (index), and a native
///   expiry at its `expires_at` plus a grace (60 s by default) so that a node whose clock runs
///   a little behind still sees it;
/// - an index is a sorted set `<prefix>:i:<namespace length>:<namespace>:<index>` of keys
///   scored by their expiry (`+inf` for none). Members whose score has passed are trimmed on
///   every write to the set and every `list` of it, and the set itself expires with its last
///   member, so members never leak when records expire natively;
/// - versions come from one counter, `<prefix>:version` (`INCR`). When the counter is missing
///   (a new store, or one lost to a Redis restart without persistence, a `FLUSHALL` or an
///   eviction) it starts at the Redis server's clock in microseconds, so versions still never
///   repeat for a key: the versions given before grew by one per write, far slower than the
///   clock. That holds unless the server's clock went back by more than the time since the
///   counter began, or the store made more than a million writes a second.
///
/// Every operation that writes or must be consistent is one Lua script (atomic in Redis):
/// insert-if-absent, put, take (the `GETDEL` of a hash), compare-and-swap, compare-and-delete,
/// delete and list; `get` is one `HMGET` and `get_many` one pipeline.
///
/// # Consistency and durability
///
/// Point it at the primary, never a replica: [`list`](Store::list) must be strongly
/// consistent. Redis acknowledges a write before it reaches the disk (unless `appendfsync
/// always`), so a crash may undo the last writes: a used login state could come back (the
/// provider still refuses its code a second time), a lease could vanish early. Keep connection
/// tokens, bindings and configurations in SQL.
///
/// ```no_run
/// # async fn run() -> Result<(), cx_sso::StoreError> {
/// use cx_sso::store::RedisStore;
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    grace_ms: i64,
}

impl fmt::Debug for RedisStore {
    // The URL may carry a password: only the prefix is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("expiry_grace_ms", &self.grace_ms)
            .finish_non_exhaustive()
    }
}

/// Settings for [`RedisStore::connect_with`].
#[derive(Debug, Clone)]
pub struct RedisStoreOptions {
    prefix: String,
    expiry_grace: StdDuration,
    connection_timeout: StdDuration,
    response_timeout: StdDuration,
}

impl Default for RedisStoreOptions {
    fn default() -> Self {
        Self {
            prefix: "{cxsso}".to_owned(),
            expiry_grace: StdDuration::from_secs(60),
            connection_timeout: StdDuration::from_secs(5),
            response_timeout: StdDuration::from_secs(5),
        }
    }
}

impl RedisStoreOptions {
    /// The defaults: prefix `{cxsso}`, a 60-second expiry grace, 5-second timeouts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The prefix of every key, to share one Redis between several stores or applications.
    /// Keep a `{hash tag}` in it for Redis Cluster.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long after its `expires_at` Redis itself deletes a record. Until then it is kept
    /// but answered as absent by any node whose clock has passed the expiry; a node whose clock
    /// is behind Redis's by less than the grace still sees its records.
    pub fn expiry_grace(mut self, grace: StdDuration) -> Self {
        self.expiry_grace = grace;
        self
    }

    /// How long connecting may take.
    pub fn connection_timeout(mut self, timeout: StdDuration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// How long one command may take; past it the operation fails with
    /// [`StoreError::Unavailable`] (it may have been applied).
    pub fn response_timeout(mut self, timeout: StdDuration) -> Self {
        self.response_timeout = timeout;
        self
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://[:password@]host:port/db`, or `rediss://` for TLS where the
    /// `redis` crate is built with it) with the default [`RedisStoreOptions`]. The connection
    /// reconnects by itself after a failure.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, RedisStoreOptions::default()).await
    }

    /// Connects to `url` with `options`.
    pub async fn connect_with(url: &str, options: RedisStoreOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| StoreError::unavailable_from("parse the Redis URL", e))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connection_timeout))
            .set_response_timeout(Some(options.response_timeout))
            .set_number_of_retries(2);
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| error("connect to Redis", e))?;
        Ok(Self {
            conn,
            prefix: options.prefix,
            grace_ms: i64::try_from(options.expiry_grace.as_millis()).unwrap_or(i64::MAX),
        })
    }

    fn record_key(&self, namespace: &str, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + namespace.len() + key.len() + 8);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(format!(":r:{}:", namespace.len()).as_bytes());
        out.extend_from_slice(namespace.as_bytes());
        out.push(b':');
        out.extend_from_slice(key.as_bytes());
        out
    }

    fn counter_key(&self) -> String {
        format!("{}:version", self.prefix)
    }

    /// A script invocation with the arguments every script starts with:
    /// KEYS = (record, counter); ARGV = (prefix, namespace, grace ms, now µs, key).
    fn invocation<'a>(
        &self,
        script: &'a Script,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = script.key(self.record_key(namespace, key));
        inv.key(self.counter_key())
            .arg(self.prefix.as_bytes())
            .arg(namespace.as_bytes())
            .arg(self.grace_ms)
            .arg(micros(now))
            .arg(key.as_bytes());
        inv
    }

    /// Adds the record's arguments: value, has expiry, expiry, has index, index.
    fn with_record(inv: &mut redis::ScriptInvocation<'_>, record: &NewRecord) {
        inv.arg(record.value.as_slice())
            .arg(u8::from(record.expires_at.is_some()))
            .arg(record.expires_at.map_or(0, micros))
            .arg(u8::from(record.index.is_some()))
            .arg(record.index.as_deref().unwrap_or("").as_bytes());
    }

    async fn run(
        &self,
        op: &'static str,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        inv.invoke_async(&mut conn).await.map_err(|e| error(op, e))
    }
}

/// Unix microseconds, rounded down, saturating far outside any real date.
fn micros(t: OffsetDateTime) -> i64 {
    let us = t.unix_timestamp_nanos().div_euclid(1000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

fn error(op: &'static str, e: redis::RedisError) -> StoreError {
    match e.kind() {
        redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType => StoreError::Corrupt {
            message: format!("{op}: Redis answered in an unexpected shape: {e}"),
        },
        _ => StoreError::unavailable_from(format!("{op} failed"), e),
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt {
        message: format!("Redis answered in an unexpected shape: {what}"),
    }
}

// ---- decoding script answers ----

fn bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::BulkString(b) => Some(b.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn version(v: &Value) -> Result<u64, StoreError> {
    int(v)
        .and_then(|i| u64::try_from(i).ok())
        .filter(|v| *v >= 1)
        .ok_or_else(|| corrupt("a version is not a positive number"))
}

fn items(v: Value) -> Result<Vec<Value>, StoreError> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(Vec::new()),
        _ => Err(corrupt("expected an array")),
    }
}

/// A record from the fields (value, version, expiry, index); `None` when the version is nil
/// (no such hash).
fn record(fields: &[Value]) -> Result<Option<Record>, StoreError> {
    let [value, ver, expires, index] = fields else {
        return Err(corrupt("a record has four fields"));
    };
    if matches!(ver, Value::Nil) {
        return Ok(None);
    }
    let expires_at = match expires {
        Value::Nil => None,
        v => {
            let us = int(v).ok_or_else(|| corrupt("an expiry is not a number"))?;
            Some(
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
                    .map_err(|_| corrupt("an expiry is out of range"))?,
            )
        }
    };
    let index = match index {
        Value::Nil => None,
        v => Some(
            bytes(v)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| corrupt("an index is not UTF-8"))?,
        ),
    };
    Ok(Some(Record {
        value: bytes(value).ok_or_else(|| corrupt("a value is not a string"))?,
        version: version(ver)?,
        expires_at,
        index,
    }))
}

fn live(r: &Record, now: OffsetDateTime) -> bool {
    r.expires_at.is_none_or(|e| micros(e) > micros(now))
}

// ---- the scripts ----

/// Shared by every script. KEYS[1] record, KEYS[2] version counter; ARGV[1] prefix, [2]
/// namespace, [3] expiry grace (ms), [4] now (µs), [5] key, then per script.
const PRELUDE: &str = r#"
local prefix, ns, grace, now, k = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local rk = KEYS[1]
local function ikey(ix) return prefix .. ':i:' .. #ns .. ':' .. ns .. ':' .. ix end
local function is_live(e) return (not e) or tonumber(e) > now end
local function unindex()
  local old = redis.call('HGET', rk, 'x')
  if old then redis.call('ZREM', ikey(old), k) end
end
-- ARGV[6] value, [7] has expiry, [8] expiry (µs), [9] has index, [10] index
local function write()
  unindex()
  redis.call('DEL', rk)
  if redis.call('EXISTS', KEYS[2]) == 0 then
    -- A counter that is gone (new, or lost to a restart without persistence, a FLUSHALL or an
    -- eviction) starts at the server's clock in microseconds: above every version it gave
    -- before, which grew by one per write, far slower than the clock.
    local t = redis.call('TIME')
    redis.call('SET', KEYS[2], t[1] .. string.sub('00000' .. t[2], -6))
  end
  local ver = redis.call('INCR', KEYS[2])
  local has_e, e, has_x, x = ARGV[7] == '1', ARGV[8], ARGV[9] == '1', ARGV[10]
  -- '%.0f': exact for every integer below 2^53 (about 285 years of microseconds), where
  -- Lua's own number-to-text conversion keeps only 14 digits.
  redis.call('HSET', rk, 'v', ARGV[6], 'n', string.format('%.0f', ver))
  if has_e then
    redis.call('HSET', rk, 'e', e)
    redis.call('PEXPIREAT', rk, math.floor(tonumber(e) / 1000) + grace)
  end
  if has_x then
    redis.call('HSET', rk, 'x', x)
    local ik = ikey(x)
    if has_e then redis.call('ZADD', ik, e, k) else redis.call('ZADD', ik, '+inf', k) end
    redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
    local top = redis.call('ZRANGE', ik, -1, -1, 'WITHSCORES')
    if top[2] == 'inf' then
      redis.call('PERSIST', ik)
    elseif top[2] then
      redis.call('PEXPIREAT', ik, math.floor(tonumber(top[2]) / 1000) + grace)
    end
  end
  return ver
end
"#;

struct Scripts {
    insert: Script,
    put: Script,
    take: Script,
    compare_and_swap: Script,
    compare_and_delete: Script,
    delete: Script,
    list: Script,
}

fn scripts() -> &'static Scripts {
    static SCRIPTS: std::sync::OnceLock<Scripts> = std::sync::OnceLock::new();
    SCRIPTS.get_or_init(|| {
        let s = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            insert: s(r#"
if redis.call('EXISTS', rk) == 1 and is_live(redis.call('HGET', rk, 'e')) then return false end
return write()
"#),
            put: s("return write()"),
            take: s(r#"
local r = redis.call('HMGET', rk, 'v', 'n', 'e', 'x')
if not r[2] then return false end
unindex()
redis.call('DEL', rk)
return r
"#),
            // ARGV[11] expected version.
            compare_and_swap: s(r#"
local r = redis.call('HMGET', rk, 'n', 'e')
if not r[1] or not is_live(r[2]) then return {0} end
if r[1] ~= ARGV[11] then return {1, r[1]} end
return {2, write()}
"#),
            // ARGV[6] expected version.
            compare_and_delete: s(r#"
local r = redis.call('HMGET', rk, 'n', 'e')
if not r[1] or not is_live(r[2]) then return {0} end
if r[1] ~= ARGV[6] then return {1, r[1]} end
unindex()
redis.call('DEL', rk)
return {2}
"#),
            delete: s(r#"
local r = redis.call('HMGET', rk, 'n', 'e')
if not r[1] then return 0 end
unindex()
redis.call('DEL', rk)
if is_live(r[2]) then return 1 end
return 0
"#),
            // ARGV[6] index. Answers key, value, version, expiry for each live member.
            list: s(r#"
local ix = ARGV[6]
local ik = ikey(ix)
redis.call('ZREMRANGEBYSCORE', ik, '-inf', now)
local out = {}
for _, member in ipairs(redis.call('ZRANGE', ik, 0, -1)) do
  local r = redis.call('HMGET', prefix .. ':r:' .. #ns .. ':' .. ns .. ':' .. member, 'v', 'n', 'e', 'x')
  if r[2] and r[4] == ix then
    if is_live(r[3]) then
      table.insert(out, member)
      table.insert(out, r[1])
      table.insert(out, r[2])
      table.insert(out, r[3])
    end
  else
    redis.call('ZREM', ik, member)
  end
end
return out
"#),
        }
    })
}

#[async_trait]
impl Store for RedisStore {
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let mut conn = self.conn.clone();
        let fields: Value = redis::cmd("HMGET")
            .arg(self.record_key(namespace, key))
            .arg(&["v", "n", "e", "x"])
            .query_async(&mut conn)
            .await
            .map_err(|e| error("get", e))?;
        Ok(record(&items(fields)?)?.filter(|r| live(r, now)))
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (namespace, key) in keys {
            pipe.cmd("HMGET")
                .arg(self.record_key(namespace, key))
                .arg(&["v", "n", "e", "x"]);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<Value> = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| error("get_many", e))?;
        if answers.len() != keys.len() {
            return Err(corrupt("get_many answered another number of records"));
        }
        answers
            .into_iter()
            .map(|fields| Ok(record(&items(fields)?)?.filter(|r| live(r, now))))
            .collect()
    }

    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        let mut inv = self.invocation(&scripts().insert, namespace, key, now);
        Self::with_record(&mut inv, &record);
        Ok(match self.run("insert", &inv).await? {
            Value::Nil => Inserted::No,
            written => Inserted::Yes {
                version: version(&written)?,
            },
        })
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut inv = self.invocation(&scripts().put, namespace, key, now);
        Self::with_record(&mut inv, &record);
        version(&self.run("put", &inv).await?)
    }

    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        let inv = self.invocation(&scripts().take, namespace, key, now);
        let fields = items(self.run("take", &inv).await?)?;
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(record(&fields)?.filter(|r| live(r, now)))
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        let mut inv = self.invocation(&scripts().compare_and_swap, namespace, key, now);
        Self::with_record(&mut inv, &record);
        inv.arg(expected.to_string());
        match items(self.run("compare_and_swap", &inv).await?)?.as_slice() {
            [Value::Int(0)] => Ok(CasOutcome::Missing),
            [Value::Int(1), current] => Ok(CasOutcome::Conflict {
                current: version(current)?,
            }),
            [Value::Int(2), new] => Ok(CasOutcome::Swapped {
                version: version(new)?,
            }),
            _ => Err(corrupt("compare_and_swap")),
        }
    }

    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut inv = self.invocation(&scripts().compare_and_delete, namespace, key, now);
        inv.arg(expected.to_string());
        match items(self.run("compare_and_delete", &inv).await?)?.as_slice() {
            [Value::Int(0)] => Ok(DeleteOutcome::Missing),
            [Value::Int(1), current] => Ok(DeleteOutcome::Conflict {
                current: version(current)?,
            }),
            [Value::Int(2)] => Ok(DeleteOutcome::Deleted),
            _ => Err(corrupt("compare_and_delete")),
        }
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let inv = self.invocation(&scripts().delete, namespace, key, now);
        Ok(int(&self.run("delete", &inv).await?) == Some(1))
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        // The script needs no record key of its own; the index's sorted set is named in it.
        let mut inv = self.invocation(&scripts().list, namespace, "", now);
        inv.arg(index.as_bytes());
        let flat = items(self.run("list", &inv).await?)?;
        let mut out = Vec::with_capacity(flat.len() / 4);
        for chunk in flat.chunks(4) {
            let [key, value, ver, expires] = chunk else {
                return Err(corrupt("list answers four values per record"));
            };
            let key = bytes(key)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| corrupt("a key is not UTF-8"))?;
            let fields = [
                value.clone(),
                ver.clone(),
                expires.clone(),
                Value::BulkString(index.as_bytes().to_vec()),
            ];
            if let Some(rec) = record(&fields)? {
                out.push((key, rec));
            }
        }
        // The sorted set orders by expiry; the contract orders by key bytes.
        out.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
        Ok(out)
    }
}
