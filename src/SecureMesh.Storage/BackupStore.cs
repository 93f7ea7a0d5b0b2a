using System.Globalization;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>An offer of backup space to an owner, with what the owner uses of it.</summary>
public sealed record BackupOffer(PeerId PeerId, long Quota, long Used, DateTimeOffset Created);

/// <summary>What became of a request to hold a blob.</summary>
public enum HoldResult
{
    /// <summary>Recorded; the caller writes the file.</summary>
    Reserved,
    /// <summary>Already recorded.</summary>
    AlreadyHeld,
    /// <summary>It would take the owner past its quota.</summary>
    QuotaExceeded,
    /// <summary>The owner has no offer (none was made, or it was revoked).</summary>
    NoOffer,
}

/// <summary>A backed-up path of this node.</summary>
public sealed record BackupSetRecord(string Path, IReadOnlyList<PeerId> Holders, int Copies, string Keep, DateTimeOffset Added);

/// <summary>One kept version of one file of a backed-up path.</summary>
public sealed record BackupVersionRecord(string SetPath, string RelPath, DateTimeOffset Time, long Size, long MtimeNs, string ContentId, bool Deleted, IReadOnlyList<string> Blobs);

/// <summary>A holder's proof state, as the owner sees it.</summary>
public sealed record BackupHolderRecord(PeerId Holder, DateTimeOffset? LastProof, string? Failing, long RootSequence, string? UploadError = null);

/// <summary>
/// Backup records. Holder side: offers (audited) and the blobs held for each owner, with the quota checked in the same
/// transaction that reserves a blob. Owner side: backed-up paths (audited), versions, blobs with their proof challenges,
/// placements at holders and each holder's proof state (failures audited). Blob IDs are 64 hex characters.
/// </summary>
public sealed class BackupStore
{
    private readonly SecureMeshDatabase _database;

    internal BackupStore(SecureMeshDatabase database) => _database = database;

    // ---- holder side ----

    /// <summary>Offers <paramref name="quota"/> bytes to <paramref name="peer"/> (a changed quota replaces the old one); audited.</summary>
    public void Offer(PeerId peer, long quota)
    {
        ArgumentNullException.ThrowIfNull(peer);
        ArgumentOutOfRangeException.ThrowIfNegative(quota);
        _database.Write(tx =>
        {
            SecureMeshDatabase.Execute(tx,
                "INSERT INTO backup_offers (peer_id, quota, created) VALUES ($peer, $quota, $now) ON CONFLICT (peer_id) DO UPDATE SET quota = excluded.quota",
                ("$peer", peer.Text), ("$quota", quota), ("$now", _database.NowMs()));
            _database.Audit.AppendCore(tx, "backup.offer", peer.Text, $"quota={quota.ToString(CultureInfo.InvariantCulture)}");
            return 0;
        });
    }

    /// <summary>Withdraws the offer and forgets the blobs held (the caller deletes the files); false when there was none. Audited.</summary>
    public bool Revoke(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Write(tx =>
        {
            var removed = SecureMeshDatabase.Execute(tx, "DELETE FROM backup_offers WHERE peer_id = $peer", ("$peer", peer.Text)) > 0;
            SecureMeshDatabase.Execute(tx, "DELETE FROM backup_held WHERE owner = $peer", ("$peer", peer.Text));
            if (removed)
            {
                _database.Audit.AppendCore(tx, "backup.revoke", peer.Text, "offer withdrawn; held blobs deleted");
            }
            return removed;
        });
    }

    /// <summary>The offer to <paramref name="peer"/>, or null.</summary>
    public BackupOffer? GetOffer(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return ListOffers().FirstOrDefault(o => o.PeerId.Equals(peer));
    }

    /// <summary>True when <paramref name="peer"/> has an offer (the protocol policy's question).</summary>
    public bool HasOffer(PeerId peer)
    {
        ArgumentNullException.ThrowIfNull(peer);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, "SELECT 1 FROM backup_offers WHERE peer_id = $peer", ("$peer", peer.Text));
            return command.ExecuteScalar() is not null;
        });
    }

    /// <summary>Every offer with its use.</summary>
    public IReadOnlyList<BackupOffer> ListOffers() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection,
            "SELECT o.peer_id, o.quota, o.root_size + coalesce((SELECT sum(size) FROM backup_held h WHERE h.owner = o.peer_id), 0), o.created FROM backup_offers o ORDER BY o.peer_id");
        using var reader = command.ExecuteReader();
        var offers = new List<BackupOffer>();
        while (reader.Read())
        {
            if (PeerId.TryParse(reader.GetString(0), out var peer, out _))
            {
                offers.Add(new BackupOffer(peer, reader.GetInt64(1), reader.GetInt64(2), StateNames.FromMs(reader.GetInt64(3))));
            }
        }
        return offers;
    });

    /// <summary>Records a blob to hold for <paramref name="owner"/> if its offer has room, in one transaction.</summary>
    public HoldResult ReserveHeld(PeerId owner, string blobId, long size)
    {
        ArgumentNullException.ThrowIfNull(owner);
        CheckBlobId(blobId);
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        return _database.Write(tx =>
        {
            if (SecureMeshDatabase.Scalar(tx, "SELECT quota FROM backup_offers WHERE peer_id = $peer", ("$peer", owner.Text)) is not long quota)
            {
                return HoldResult.NoOffer;
            }
            if (SecureMeshDatabase.Scalar(tx, "SELECT 1 FROM backup_held WHERE owner = $peer AND blob_id = $id", ("$peer", owner.Text), ("$id", blobId)) is not null)
            {
                return HoldResult.AlreadyHeld;
            }
            if (UsedCore(tx, owner) + size > quota)
            {
                return HoldResult.QuotaExceeded;
            }
            SecureMeshDatabase.Execute(tx, "INSERT INTO backup_held (owner, blob_id, size, stored) VALUES ($peer, $id, $size, $now)",
                ("$peer", owner.Text), ("$id", blobId), ("$size", size), ("$now", _database.NowMs()));
            return HoldResult.Reserved;
        });
    }

    /// <summary>Records the size of <paramref name="owner"/>'s root if its offer has room.</summary>
    public HoldResult ReserveRoot(PeerId owner, long size)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return _database.Write(tx =>
        {
            if (SecureMeshDatabase.Scalar(tx, "SELECT quota FROM backup_offers WHERE peer_id = $peer", ("$peer", owner.Text)) is not long quota)
            {
                return HoldResult.NoOffer;
            }
            var old = (long)SecureMeshDatabase.Scalar(tx, "SELECT root_size FROM backup_offers WHERE peer_id = $peer", ("$peer", owner.Text))!;
            if (UsedCore(tx, owner) - old + size > quota)
            {
                return HoldResult.QuotaExceeded;
            }
            SecureMeshDatabase.Execute(tx, "UPDATE backup_offers SET root_size = $size WHERE peer_id = $peer", ("$peer", owner.Text), ("$size", size));
            return HoldResult.Reserved;
        });
    }

    /// <summary>Forgets a held blob; false when it was not held.</summary>
    public bool RemoveHeld(PeerId owner, string blobId)
    {
        ArgumentNullException.ThrowIfNull(owner);
        CheckBlobId(blobId);
        return _database.Write(tx => SecureMeshDatabase.Execute(tx, "DELETE FROM backup_held WHERE owner = $peer AND blob_id = $id",
            ("$peer", owner.Text), ("$id", blobId)) > 0);
    }

    /// <summary>True when the blob is recorded as held.</summary>
    public bool IsHeld(PeerId owner, string blobId)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, "SELECT 1 FROM backup_held WHERE owner = $peer AND blob_id = $id", ("$peer", owner.Text), ("$id", blobId));
            return command.ExecuteScalar() is not null;
        });
    }

    /// <summary>Up to <paramref name="limit"/> blobs held for <paramref name="owner"/> after <paramref name="after"/>, ordered by ID.</summary>
    public IReadOnlyList<(string BlobId, long Size)> ListHeld(PeerId owner, string? after, int limit)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection,
                "SELECT blob_id, size FROM backup_held WHERE owner = $peer AND blob_id > $after ORDER BY blob_id LIMIT $limit",
                ("$peer", owner.Text), ("$after", after ?? ""), ("$limit", limit));
            using var reader = command.ExecuteReader();
            var list = new List<(string, long)>();
            while (reader.Read())
            {
                list.Add((reader.GetString(0), reader.GetInt64(1)));
            }
            return list;
        });
    }

    /// <summary>Bytes <paramref name="owner"/> uses here (blobs and root).</summary>
    public long Used(PeerId owner)
    {
        ArgumentNullException.ThrowIfNull(owner);
        return _database.Write(tx => UsedCore(tx, owner));
    }

    private static long UsedCore(SqliteTransaction tx, PeerId owner) =>
        (long)(SecureMeshDatabase.Scalar(tx, "SELECT coalesce((SELECT root_size FROM backup_offers WHERE peer_id = $peer), 0) + coalesce((SELECT sum(size) FROM backup_held WHERE owner = $peer), 0)",
            ("$peer", owner.Text)) ?? 0L);

    // ---- owner side ----

    /// <summary>Adds (or changes) a backed-up path; audited.</summary>
    public void AddSet(string path, IReadOnlyList<PeerId> holders, int copies, string keep)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(holders);
        ArgumentOutOfRangeException.ThrowIfLessThan(copies, 1);
        var holderText = string.Join(',', holders.Select(h => h.Text));
        _database.Write(tx =>
        {
            SecureMeshDatabase.Execute(tx,
                "INSERT INTO backup_sets (path, holders, copies, keep, added) VALUES ($path, $holders, $copies, $keep, $now) " +
                "ON CONFLICT (path) DO UPDATE SET holders = excluded.holders, copies = excluded.copies, keep = excluded.keep",
                ("$path", path), ("$holders", holderText), ("$copies", copies), ("$keep", keep), ("$now", _database.NowMs()));
            _database.Audit.AppendCore(tx, "backup.add", null, $"path={path} holders={holderText} copies={copies.ToString(CultureInfo.InvariantCulture)} keep={keep}");
            return 0;
        });
    }

    /// <summary>Stops backing up a path (its versions are forgotten; the service deletes blobs no version needs); audited.</summary>
    public bool RemoveSet(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return _database.Write(tx =>
        {
            if (SecureMeshDatabase.Execute(tx, "DELETE FROM backup_sets WHERE path = $path", ("$path", path)) == 0)
            {
                return false;
            }
            SecureMeshDatabase.Execute(tx, "DELETE FROM backup_versions WHERE set_path = $path", ("$path", path));
            _database.Audit.AppendCore(tx, "backup.remove", null, $"path={path}");
            return true;
        });
    }

    /// <summary>The backed-up paths.</summary>
    public IReadOnlyList<BackupSetRecord> ListSets() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT path, holders, copies, keep, added FROM backup_sets ORDER BY path");
        using var reader = command.ExecuteReader();
        var sets = new List<BackupSetRecord>();
        while (reader.Read())
        {
            var holders = reader.GetString(1).Split(',', StringSplitOptions.RemoveEmptyEntries)
                .Select(t => PeerId.TryParse(t, out var p, out _) ? p : null).OfType<PeerId>().ToList();
            sets.Add(new BackupSetRecord(reader.GetString(0), holders, reader.GetInt32(2), reader.GetString(3), StateNames.FromMs(reader.GetInt64(4))));
        }
        return sets;
    });

    /// <summary>Every kept version (of one path, or all), ordered by path, file and time.</summary>
    public IReadOnlyList<BackupVersionRecord> ListVersions(string? setPath = null) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection,
            "SELECT set_path, rel_path, time, size, mtime_ns, content_id, deleted, blobs FROM backup_versions " +
            "WHERE $set IS NULL OR set_path = $set ORDER BY set_path, rel_path, time", ("$set", setPath));
        using var reader = command.ExecuteReader();
        var list = new List<BackupVersionRecord>();
        while (reader.Read())
        {
            list.Add(new BackupVersionRecord(reader.GetString(0), reader.GetString(1), StateNames.FromMs(reader.GetInt64(2)), reader.GetInt64(3),
                reader.GetInt64(4), reader.GetString(5), reader.GetInt64(6) != 0, reader.GetString(7).Split(',', StringSplitOptions.RemoveEmptyEntries)));
        }
        return list;
    });

    /// <summary>Records a new version with its blobs (and their challenges) in one transaction.</summary>
    public void AddVersion(BackupVersionRecord version, IReadOnlyList<(string BlobId, long Size, byte[] Challenges)> blobs)
    {
        ArgumentNullException.ThrowIfNull(version);
        ArgumentNullException.ThrowIfNull(blobs);
        _database.Write(tx =>
        {
            foreach (var (id, size, challenges) in blobs)
            {
                CheckBlobId(id);
                SecureMeshDatabase.Execute(tx, "INSERT OR REPLACE INTO backup_blobs (blob_id, size, challenges) VALUES ($id, $size, $ch)",
                    ("$id", id), ("$size", size), ("$ch", challenges));
            }
            SecureMeshDatabase.Execute(tx,
                "INSERT OR REPLACE INTO backup_versions (set_path, rel_path, time, size, mtime_ns, content_id, deleted, blobs) " +
                "VALUES ($set, $rel, $time, $size, $mtime, $cid, $deleted, $blobs)",
                ("$set", version.SetPath), ("$rel", version.RelPath), ("$time", version.Time.ToUnixTimeMilliseconds()), ("$size", version.Size),
                ("$mtime", version.MtimeNs), ("$cid", version.ContentId), ("$deleted", version.Deleted ? 1 : 0), ("$blobs", string.Join(',', version.Blobs)));
            return 0;
        });
    }

    /// <summary>Drops one version (its blobs stay until <see cref="DeleteBlob"/>).</summary>
    public bool DropVersion(string setPath, string relPath, DateTimeOffset time) => _database.Write(tx =>
        SecureMeshDatabase.Execute(tx, "DELETE FROM backup_versions WHERE set_path = $set AND rel_path = $rel AND time = $time",
            ("$set", setPath), ("$rel", relPath), ("$time", time.ToUnixTimeMilliseconds())) > 0);

    /// <summary>Every blob this node made, with its size.</summary>
    public IReadOnlyDictionary<string, long> ListBlobs() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT blob_id, size FROM backup_blobs");
        using var reader = command.ExecuteReader();
        var map = new Dictionary<string, long>(StringComparer.Ordinal);
        while (reader.Read())
        {
            map[reader.GetString(0)] = reader.GetInt64(1);
        }
        return map;
    });

    /// <summary>Records a blob (and its challenges) without a version: the trust-store export.</summary>
    public void AddBlob(string blobId, long size, byte[] challenges)
    {
        CheckBlobId(blobId);
        _database.Write(tx => SecureMeshDatabase.Execute(tx, "INSERT OR REPLACE INTO backup_blobs (blob_id, size, challenges) VALUES ($id, $size, $ch)",
            ("$id", blobId), ("$size", size), ("$ch", challenges)));
    }

    /// <summary>The unused packed challenges of a blob (empty when none are left or the blob is unknown).</summary>
    public byte[] GetChallenges(string blobId) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT challenges FROM backup_blobs WHERE blob_id = $id", ("$id", blobId));
        return command.ExecuteScalar() as byte[] ?? [];
    });

    /// <summary>Replaces a blob's packed challenges (after one was used, or new ones were made).</summary>
    public void SetChallenges(string blobId, byte[] challenges) => _database.Write(tx =>
        SecureMeshDatabase.Execute(tx, "UPDATE backup_blobs SET challenges = $ch WHERE blob_id = $id", ("$id", blobId), ("$ch", challenges)));

    /// <summary>Forgets a blob and its placements.</summary>
    public void DeleteBlob(string blobId) => _database.Write(tx =>
    {
        SecureMeshDatabase.Execute(tx, "DELETE FROM backup_blobs WHERE blob_id = $id", ("$id", blobId));
        return SecureMeshDatabase.Execute(tx, "DELETE FROM backup_placements WHERE blob_id = $id", ("$id", blobId));
    });

    /// <summary>Records that <paramref name="holder"/> stores the blob (or, with false, that it does not).</summary>
    public void SetPlaced(string blobId, PeerId holder, bool stored)
    {
        ArgumentNullException.ThrowIfNull(holder);
        _database.Write(tx => stored
            ? SecureMeshDatabase.Execute(tx, "INSERT OR REPLACE INTO backup_placements (blob_id, holder, stored) VALUES ($id, $holder, $now)",
                ("$id", blobId), ("$holder", holder.Text), ("$now", _database.NowMs()))
            : SecureMeshDatabase.Execute(tx, "DELETE FROM backup_placements WHERE blob_id = $id AND holder = $holder", ("$id", blobId), ("$holder", holder.Text)));
    }

    /// <summary>Records that <paramref name="holder"/> stores every one of <paramref name="blobIds"/>, in one transaction.</summary>
    public void SetPlaced(IEnumerable<string> blobIds, PeerId holder)
    {
        ArgumentNullException.ThrowIfNull(blobIds);
        ArgumentNullException.ThrowIfNull(holder);
        _database.Write(tx =>
        {
            foreach (var id in blobIds)
            {
                SecureMeshDatabase.Execute(tx, "INSERT OR REPLACE INTO backup_placements (blob_id, holder, stored) VALUES ($id, $holder, $now)",
                    ("$id", id), ("$holder", holder.Text), ("$now", _database.NowMs()));
            }
            return 0;
        });
    }

    /// <summary>The blobs <paramref name="holder"/> is recorded to store.</summary>
    public IReadOnlySet<string> ListPlaced(PeerId holder)
    {
        ArgumentNullException.ThrowIfNull(holder);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, "SELECT blob_id FROM backup_placements WHERE holder = $holder", ("$holder", holder.Text));
            using var reader = command.ExecuteReader();
            var set = new HashSet<string>(StringComparer.Ordinal);
            while (reader.Read())
            {
                set.Add(reader.GetString(0));
            }
            return set;
        });
    }

    /// <summary>A holder's proof state (a fresh one when never recorded).</summary>
    public BackupHolderRecord GetHolder(PeerId holder)
    {
        ArgumentNullException.ThrowIfNull(holder);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, "SELECT last_proof, failing, root_seq, upload_error FROM backup_holders WHERE holder = $holder", ("$holder", holder.Text));
            using var reader = command.ExecuteReader();
            return reader.Read()
                ? new BackupHolderRecord(holder, reader.IsDBNull(0) ? null : StateNames.FromMs(reader.GetInt64(0)), reader.IsDBNull(1) ? null : reader.GetString(1), reader.GetInt64(2),
                    reader.IsDBNull(3) ? null : reader.GetString(3))
                : new BackupHolderRecord(holder, null, null, 0);
        });
    }

    /// <summary>Records a proof round: passed (<paramref name="failure"/> null) or failed with the reason, which is audited.</summary>
    public void RecordProof(PeerId holder, string? failure)
    {
        ArgumentNullException.ThrowIfNull(holder);
        _database.Write(tx =>
        {
            EnsureHolder(tx, holder);
            if (failure is null)
            {
                SecureMeshDatabase.Execute(tx, "UPDATE backup_holders SET last_proof = $now, failing = NULL WHERE holder = $holder", ("$holder", holder.Text), ("$now", _database.NowMs()));
            }
            else
            {
                SecureMeshDatabase.Execute(tx, "UPDATE backup_holders SET failing = $why WHERE holder = $holder", ("$holder", holder.Text), ("$why", failure));
                _database.Audit.AppendCore(tx, "backup.proof-failed", holder.Text, failure);
            }
            return 0;
        });
    }

    /// <summary>Records why the last upload to a holder failed (null: it succeeded).</summary>
    public void SetUploadError(PeerId holder, string? error)
    {
        ArgumentNullException.ThrowIfNull(holder);
        _database.Write(tx =>
        {
            EnsureHolder(tx, holder);
            return SecureMeshDatabase.Execute(tx, "UPDATE backup_holders SET upload_error = $error WHERE holder = $holder", ("$holder", holder.Text), ("$error", error));
        });
    }

    /// <summary>Records the catalog sequence a holder was last given (or showed).</summary>
    public void SetHolderRoot(PeerId holder, long sequence)
    {
        ArgumentNullException.ThrowIfNull(holder);
        _database.Write(tx =>
        {
            EnsureHolder(tx, holder);
            return SecureMeshDatabase.Execute(tx, "UPDATE backup_holders SET root_seq = $seq WHERE holder = $holder", ("$holder", holder.Text), ("$seq", sequence));
        });
    }

    /// <summary>A value of the owner's backup state (catalog sequence, trust-store blob), or null.</summary>
    public string? GetState(string key) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT value FROM backup_state WHERE key = $key", ("$key", key));
        return command.ExecuteScalar() as string;
    });

    /// <summary>Sets a value of the owner's backup state.</summary>
    public void SetState(string key, string value) => _database.Write(tx =>
        SecureMeshDatabase.Execute(tx, "INSERT INTO backup_state (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            ("$key", key), ("$value", value)));

    private static void EnsureHolder(SqliteTransaction tx, PeerId holder) =>
        SecureMeshDatabase.Execute(tx, "INSERT OR IGNORE INTO backup_holders (holder) VALUES ($holder)", ("$holder", holder.Text));

    private static void CheckBlobId(string blobId)
    {
        if (blobId is not { Length: 64 } || blobId.Any(c => c is not (>= '0' and <= '9' or >= 'a' and <= 'f')))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "not a blob ID (64 lowercase hex characters)");
        }
    }
}
