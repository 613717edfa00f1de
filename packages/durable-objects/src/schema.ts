/**
 * Internal (used by queue-shard.ts): the SQLite schema of a queue shard and its migrations.
 *
 * A shard migrates itself when it starts (inside `blockConcurrencyWhile`, before any call is
 * served), so a deploy that adds a migration upgrades each shard the first time it wakes up.
 * `schema_version` holds the number of migrations applied; migrations only ever append.
 */

/** Largest contents chunk stored in one row: below the 2 MB Durable Object SQLite row limit. */
export const CHUNK_BYTES = 1024 * 1024;

/** One migration: statements run in order inside the shard's migration transaction. */
type Migration = readonly string[];

/**
 * The partial index's expressions, as the first migration wrote them. A migration's text is
 * frozen once shipped; queries use `@mailspool/core/sql`'s fragments, which must stay equal to
 * these for SQLite to use the index (a test compares them).
 */
export const INDEXED_DUE_AT = 'coalesce(retry_at, created_at)';
export const INDEXED_COMPLETE = '(meta IS NOT NULL AND size IS NOT NULL)';

export const MIGRATIONS: readonly Migration[] = [
  [
    // One row per message; times are epoch ms from the caller's clock. `token` is the last
    // fencing token handed out and only ever grows; `version` counts contents writes so a read
    // split over several RPC calls can tell that the contents changed under it.
    `CREATE TABLE messages (
      id TEXT PRIMARY KEY NOT NULL,
      created_at INTEGER NOT NULL,
      meta TEXT,
      size INTEGER,
      retry_at INTEGER,
      locked_until INTEGER,
      token INTEGER NOT NULL DEFAULT 0,
      version INTEGER NOT NULL DEFAULT 0
    )`,
    // claimDue, peekDue, stats' `due` and the alarm walk this index in due order; it holds
    // complete messages only, so claimed-but-empty ids never slow a claim down.
    `CREATE INDEX messages_due ON messages (${INDEXED_DUE_AT}, id) WHERE ${INDEXED_COMPLETE}`,
    // The next lock expiry (for the alarm) and the active list.
    'CREATE INDEX messages_lock ON messages (locked_until) WHERE locked_until IS NOT NULL',
    // Contents in chunks of at most CHUNK_BYTES. `owner` is a message id, or `upload:<uuid>` for
    // contents staged by a client in several RPC calls (ids can't contain ':', so they never clash).
    `CREATE TABLE chunks (
      owner TEXT NOT NULL,
      seq INTEGER NOT NULL,
      data BLOB NOT NULL,
      PRIMARY KEY (owner, seq)
    )`,
    // Staged uploads, so abandoned ones can be found and dropped.
    'CREATE TABLE uploads (owner TEXT PRIMARY KEY NOT NULL, started_at INTEGER NOT NULL)',
    // Small shard-wide state: the alarm hook's failure count and backoff.
    'CREATE TABLE shard_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL)',
  ],
  [
    // Idempotency keys of `storeMessageOnce`: written in the same transaction as the message, so
    // a key names exactly one stored message or none. `fingerprint` is the caller's digest of the
    // request, to tell a retry from a different request reusing the key. Kept for a retention
    // window (see ShardStore.storeOnce), by `created_at` (the caller's clock).
    `CREATE TABLE idempotency (
      key TEXT PRIMARY KEY NOT NULL,
      message_id TEXT NOT NULL,
      fingerprint TEXT NOT NULL,
      created_at INTEGER NOT NULL
    )`,
    'CREATE INDEX idempotency_age ON idempotency (created_at)',
  ],
  [
    // The shard's own name (`<queue>:<index>`), written the first time the runtime tells it
    // (`ctx.id.name` of a request made through `idFromName`) and read back on every start: an
    // instance started by its alarm has no `ctx.id.name`, and it still has to know whose mail
    // it holds.
    'CREATE TABLE shard_identity (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)',
  ],
  [
    // Records a subclass keeps about its messages (`QueueShard.onMessageChange`), written in the
    // same transaction as the change they describe: a delivery record outlives its message
    // until `expires_at` (NULL: while the message is still queued) and is then pruned by the
    // alarm, a few rows per run. `data` is the subclass's own JSON text.
    `CREATE TABLE message_records (
      id TEXT PRIMARY KEY NOT NULL,
      data TEXT NOT NULL,
      expires_at INTEGER
    )`,
    'CREATE INDEX message_records_expiry ON message_records (expires_at) WHERE expires_at IS NOT NULL',
    // The outbox: notifications a subclass queues in the same transaction as the change they
    // report, handed to `QueueShard.deliverOutboxEntry` by the alarm until one succeeds (at
    // least once, with backoff). Entries of one `stream` are delivered one at a time in `seq`
    // order (`seq` is a rowid: a new entry is always above every stored one); `due_at` is the
    // shard's clock.
    `CREATE TABLE outbox (
      seq INTEGER PRIMARY KEY,
      stream TEXT NOT NULL,
      body TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      due_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0
    )`,
    'CREATE INDEX outbox_stream ON outbox (stream, seq)',
  ],
  [
    // Priorities: `claimDue` takes due mail by rank (0 high, 1 normal, 2 bulk), then due time,
    // then id. Rows written before have the default rank, `normal`. The claim walks this index
    // in that order; the due index stays for `nextDueAt`, the alarm and counts.
    'ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 1',
    `CREATE INDEX messages_priority_due ON messages (priority, ${INDEXED_DUE_AT}, id) WHERE ${INDEXED_COMPLETE}`,
  ],
];

/** Applies the migrations not yet applied; returns the schema version reached. */
export function migrate(sql: SqlStorage): number {
  sql.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
  const row = sql.exec<{ version: number }>('SELECT version FROM schema_version').toArray()[0];
  let version = row?.version ?? 0;
  if (row === undefined) sql.exec('INSERT INTO schema_version (version) VALUES (0)');
  if (version > MIGRATIONS.length) {
    // A shard written by a newer release: refuse to guess at a schema we don't know.
    throw new Error(
      `shard schema version ${version} is newer than this code knows (${MIGRATIONS.length})`,
    );
  }
  for (; version < MIGRATIONS.length; version++) {
    for (const statement of MIGRATIONS[version]!) sql.exec(statement);
  }
  sql.exec('UPDATE schema_version SET version = ?', version);
  return version;
}
