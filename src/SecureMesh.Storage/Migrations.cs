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

        // Version 5 (issue 18): peer groups and who may see each share. Every existing share keeps today's audience,
        // every trusted peer ('all'); a share added later gets 'all' too unless its audience is set in the same breath.
        // access_stamps moves whenever something that decides visibility changes (trusted peers, groups, members,
        // audiences: 'audience'; shares and catalog paths or contents: 'catalog'), so a running node rebuilds its
        // in-memory view only then, not on every commit.
        """
        CREATE TABLE peer_groups (
            name    TEXT PRIMARY KEY NOT NULL,
            created INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE peer_group_members (
            group_name TEXT NOT NULL REFERENCES peer_groups (name) ON DELETE CASCADE,
            peer_id    TEXT NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE,
            added      INTEGER NOT NULL,
            PRIMARY KEY (group_name, peer_id)
        ) WITHOUT ROWID;
        CREATE INDEX peer_group_members_peer ON peer_group_members (peer_id);

        CREATE TABLE share_audience (
            id         INTEGER PRIMARY KEY,
            share_path TEXT NOT NULL REFERENCES shares (path) ON DELETE CASCADE,
            kind       TEXT NOT NULL CHECK (kind IN ('all', 'group', 'peer')),
            group_name TEXT REFERENCES peer_groups (name),
            peer_id    TEXT REFERENCES peers (peer_id) ON DELETE CASCADE,
            CHECK ((kind = 'all' AND group_name IS NULL AND peer_id IS NULL)
                OR (kind = 'group' AND group_name IS NOT NULL AND peer_id IS NULL)
                OR (kind = 'peer' AND peer_id IS NOT NULL AND group_name IS NULL))
        );
        CREATE UNIQUE INDEX share_audience_entry ON share_audience (share_path, kind, coalesce(group_name, ''), coalesce(peer_id, ''));
        CREATE INDEX share_audience_group ON share_audience (group_name);
        CREATE INDEX share_audience_peer ON share_audience (peer_id);
        INSERT INTO share_audience (share_path, kind) SELECT path, 'all' FROM shares;

        CREATE TABLE access_stamps (
            name  TEXT PRIMARY KEY NOT NULL,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO access_stamps (name, value) VALUES ('audience', 0), ('catalog', 0);

        CREATE TRIGGER share_default_audience AFTER INSERT ON shares
        BEGIN
            INSERT INTO share_audience (share_path, kind) VALUES (NEW.path, 'all');
            UPDATE access_stamps SET value = value + 1 WHERE name = 'catalog';
        END;
        CREATE TRIGGER share_removed_stamp AFTER DELETE ON shares
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'catalog';
        END;
        CREATE TRIGGER audience_insert_stamp AFTER INSERT ON share_audience
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER audience_delete_stamp AFTER DELETE ON share_audience
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER member_insert_stamp AFTER INSERT ON peer_group_members
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER member_delete_stamp AFTER DELETE ON peer_group_members
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER peer_trusted_insert_stamp AFTER INSERT ON peers WHEN NEW.state = 'trusted'
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER peer_state_stamp AFTER UPDATE OF state ON peers WHEN OLD.state = 'trusted' OR NEW.state = 'trusted'
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER peer_trusted_delete_stamp AFTER DELETE ON peers WHEN OLD.state = 'trusted'
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'audience';
        END;
        CREATE TRIGGER catalog_insert_stamp AFTER INSERT ON catalog
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'catalog';
        END;
        CREATE TRIGGER catalog_update_stamp AFTER UPDATE OF path, content_id ON catalog
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'catalog';
        END;
        CREATE TRIGGER catalog_delete_stamp AFTER DELETE ON catalog
        BEGIN
            UPDATE access_stamps SET value = value + 1 WHERE name = 'catalog';
        END;
        """,

        // Version 6 (issue 15): a peer whose node refused this one (it blocked us): when it last did and how many times
        // in a row, so the dialler backs off across restarts and the UI can say "refusing us". A working session clears it.
        """
        ALTER TABLE peers ADD COLUMN refused_at INTEGER;
        ALTER TABLE peers ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0 CHECK (refusals >= 0);
        """,

        // Version 7 (issue 14, files): which file (device, inode) each catalog entry was indexed from, so a served
        // handle is proven to be that file; whether a share includes hidden entries; what a scan skipped and why;
        // a release recorded before its file moves (the destination), reconciled at start.
        """
        ALTER TABLE catalog ADD COLUMN device INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE catalog ADD COLUMN inode INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE shares ADD COLUMN include_hidden INTEGER NOT NULL DEFAULT 0 CHECK (include_hidden IN (0, 1));
        CREATE TABLE share_skipped (
            share_root TEXT NOT NULL,
            path       TEXT NOT NULL,
            reason     TEXT NOT NULL,
            PRIMARY KEY (share_root, path)
        ) WITHOUT ROWID;
        ALTER TABLE quarantine ADD COLUMN release_pending TEXT;
        ALTER TABLE quarantine ADD COLUMN release_manual INTEGER NOT NULL DEFAULT 0 CHECK (release_manual IN (0, 1));
        """,

        // Version 8 (issue 14, network): a download that failed is never resumed by itself (why it failed is kept; a new `get`
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

        // Version 9 (issue 19): backup. Holder side: the offers made to owners and the blobs held for each (the files live
        // under backup-held/ in the data directory). Owner side: the backed-up paths, every kept version of every file with
        // its sealed chunks, each sealed blob with its unused proof challenges, which holder has which blob, each holder's
        // proof state, and the catalog's sequence number.
        """
        CREATE TABLE backup_offers (
            peer_id   TEXT PRIMARY KEY NOT NULL,
            quota     INTEGER NOT NULL CHECK (quota >= 0),
            root_size INTEGER NOT NULL DEFAULT 0 CHECK (root_size >= 0),
            created   INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE backup_held (
            owner   TEXT NOT NULL,
            blob_id TEXT NOT NULL,
            size    INTEGER NOT NULL CHECK (size > 0),
            stored  INTEGER NOT NULL,
            PRIMARY KEY (owner, blob_id)
        ) WITHOUT ROWID;
        CREATE TABLE backup_sets (
            path    TEXT PRIMARY KEY NOT NULL,
            holders TEXT NOT NULL,
            copies  INTEGER NOT NULL CHECK (copies >= 1),
            keep    TEXT NOT NULL,
            added   INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE backup_versions (
            set_path   TEXT NOT NULL,
            rel_path   TEXT NOT NULL,
            time       INTEGER NOT NULL,
            size       INTEGER NOT NULL CHECK (size >= 0),
            mtime_ns   INTEGER NOT NULL,
            content_id TEXT NOT NULL,
            deleted    INTEGER NOT NULL CHECK (deleted IN (0, 1)),
            blobs      TEXT NOT NULL,
            PRIMARY KEY (set_path, rel_path, time)
        ) WITHOUT ROWID;
        CREATE TABLE backup_blobs (
            blob_id    TEXT PRIMARY KEY NOT NULL,
            size       INTEGER NOT NULL CHECK (size > 0),
            challenges BLOB NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE backup_placements (
            blob_id TEXT NOT NULL,
            holder  TEXT NOT NULL,
            stored  INTEGER NOT NULL,
            PRIMARY KEY (blob_id, holder)
        ) WITHOUT ROWID;
        CREATE INDEX backup_placements_holder ON backup_placements (holder);
        CREATE TABLE backup_holders (
            holder     TEXT PRIMARY KEY NOT NULL,
            last_proof INTEGER,
            failing    TEXT,
            upload_error TEXT,
            root_seq   INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        CREATE TABLE backup_state (
            key   TEXT PRIMARY KEY NOT NULL,
            value TEXT NOT NULL
        ) WITHOUT ROWID;
        """,
        // Version 10 (issue 17): addresses learned for trusted peers, never typed: what the peer itself advertised in
        // identify (its mapped and confirmed addresses), and what another trusted peer told us; when each was learned
        // and when a dial to it last worked, so dials try the last working one first and a moved peer is found again.
        // 'relay': a circuit address (/p2p/RELAY/p2p-circuit/p2p/PEER) the peer advertised or another peer passed on.
        """
        CREATE TABLE learned_addresses (
            peer_id      TEXT NOT NULL REFERENCES peers (peer_id) ON DELETE CASCADE,
            address      TEXT NOT NULL,
            source       TEXT NOT NULL CHECK (source IN ('identify', 'exchange', 'relay')),
            learned      INTEGER NOT NULL,
            last_success INTEGER,
            PRIMARY KEY (peer_id, address)
        ) WITHOUT ROWID;
        """,

        // Version 11 (issue 20): the ctime each catalog entry was indexed at (0: not recorded), so a seeder can skip
        // re-hashing a chunk it serves while the file's device, inode, size, mtime and ctime are all unchanged.
        """
        ALTER TABLE catalog ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;
        """,
    ];

    /// <summary>The schema version this code writes.</summary>
    internal static int LatestVersion => Steps.Length;
}
