namespace SecureMesh.Storage;

/// <summary>
/// The schema, as an ordered list of steps. Step N takes the database from user_version N-1 to N.
/// Steps are append-only: a released step is never edited, a change is a new step.
/// </summary>
internal static class Migrations
{
    internal static readonly string[] Steps =
    [
        // Version 1: trust store, blocklists, audit log, config.
        """
        CREATE TABLE peers (
            peer_id      TEXT PRIMARY KEY NOT NULL,
            name         TEXT,
            state        TEXT NOT NULL CHECK (state IN ('trusted', 'pending', 'blocked')),
            fingerprint  TEXT NOT NULL,
            first_seen   INTEGER,
            last_seen    INTEGER,
            block_reason TEXT,
            created      INTEGER NOT NULL,
            updated      INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX peers_state ON peers (state);

        CREATE TABLE peer_addresses (
            peer_id   TEXT NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE,
            address   TEXT NOT NULL,
            source    TEXT NOT NULL CHECK (source IN ('user', 'seen', 'discovered')),
            last_seen INTEGER,
            PRIMARY KEY (peer_id, address)
        ) WITHOUT ROWID;

        CREATE TABLE blocked_addresses (
            id         INTEGER PRIMARY KEY,
            cidr       TEXT NOT NULL UNIQUE,
            network    BLOB NOT NULL CHECK (length(network) IN (4, 16)),
            prefix_len INTEGER NOT NULL CHECK (prefix_len BETWEEN 0 AND 128),
            reason     TEXT,
            created    INTEGER NOT NULL,
            UNIQUE (network, prefix_len)
        );

        CREATE TABLE blocked_content (
            content_id TEXT PRIMARY KEY NOT NULL,
            reason     TEXT,
            created    INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE audit_log (
            seq       INTEGER PRIMARY KEY,
            time      INTEGER NOT NULL,
            event     TEXT NOT NULL,
            peer_id   TEXT,
            detail    TEXT NOT NULL,
            prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
            hash      BLOB NOT NULL CHECK (length(hash) = 32)
        );
        CREATE INDEX audit_log_time ON audit_log (time);

        CREATE TABLE config (
            key   TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """,

        // Version 2: tables reserved for sharing, downloads and quarantine (later issues fill them).
        """
        CREATE TABLE shares (
            path  TEXT PRIMARY KEY NOT NULL,
            added INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE catalog (
            path       TEXT PRIMARY KEY NOT NULL,
            size       INTEGER NOT NULL CHECK (size >= 0),
            mtime_ns   INTEGER NOT NULL,
            content_id TEXT NOT NULL,
            chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
            indexed_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX catalog_content ON catalog (content_id);

        CREATE TABLE downloads (
            content_id TEXT PRIMARY KEY NOT NULL,
            name       TEXT,
            size       INTEGER NOT NULL CHECK (size >= 0),
            chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
            created    INTEGER NOT NULL,
            updated    INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE download_chunks (
            content_id  TEXT NOT NULL REFERENCES downloads (content_id) ON DELETE CASCADE,
            chunk_index INTEGER NOT NULL CHECK (chunk_index >= 0),
            verified    INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
            PRIMARY KEY (content_id, chunk_index)
        ) WITHOUT ROWID;

        CREATE TABLE quarantine (
            id             INTEGER PRIMARY KEY,
            content_id     TEXT NOT NULL,
            announced_name TEXT,
            safe_name      TEXT NOT NULL,
            size           INTEGER NOT NULL CHECK (size >= 0),
            source_peers   TEXT NOT NULL DEFAULT '',
            publisher      TEXT,
            state          TEXT NOT NULL CHECK (state IN ('downloading', 'verifying', 'held', 'released', 'deleted')),
            reason         TEXT,
            created        INTEGER NOT NULL,
            updated        INTEGER NOT NULL
        );
        CREATE INDEX quarantine_content ON quarantine (content_id);
        CREATE INDEX quarantine_state ON quarantine (state);
        """,

        // Version 3: where a quarantined file lies, where it was released to, and whether it matched its content ID.
        """
        ALTER TABLE quarantine ADD COLUMN path TEXT;
        ALTER TABLE quarantine ADD COLUMN released_path TEXT;
        ALTER TABLE quarantine ADD COLUMN verified INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1));
        """,

        // Version 4 (issue 6, content and transfer): what the catalog needs to serve proofs without re-hashing
        // (the leaf hashes, 32 bytes per chunk, and the signed manifest), the display name searched by peers, and
        // what a download needs to resume (its verified manifest and quarantine item).
        """
        ALTER TABLE catalog ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE catalog ADD COLUMN share_root TEXT NOT NULL DEFAULT '';
        ALTER TABLE catalog ADD COLUMN leaves BLOB;
        ALTER TABLE catalog ADD COLUMN manifest BLOB;
        ALTER TABLE downloads ADD COLUMN manifest BLOB;
        ALTER TABLE downloads ADD COLUMN quarantine_id INTEGER;
        ALTER TABLE downloads ADD COLUMN out_dir TEXT;
        """,

        // Version 5 (issue 14): a download that failed is never resumed by itself (why it failed is kept; a new `get`
        // clears it), and the count of chunks each peer sent that failed verification survives a restart, so a lying
        // peer is banned after the same number of lies however often the node restarts.
        """
        ALTER TABLE downloads ADD COLUMN failed TEXT;
        CREATE TABLE peer_strikes (
            peer_id  TEXT PRIMARY KEY NOT NULL,
            failures INTEGER NOT NULL CHECK (failures >= 0),
            updated  INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
    ];

    /// <summary>The schema version this code writes.</summary>
    internal static int LatestVersion => Steps.Length;
}
