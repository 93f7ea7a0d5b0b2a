using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;

namespace SecureMesh.Storage;

/// <summary>One indexed file of the catalog.</summary>
/// <param name="Path">Absolute path of the file.</param>
/// <param name="ShareRoot">The shared path (file or folder) it was found under.</param>
/// <param name="Name">The name peers see and search (the file name).</param>
/// <param name="Size">Size in bytes when indexed.</param>
/// <param name="MtimeNs">Last write time when indexed, in nanoseconds since the Unix epoch (100 ns resolution).</param>
/// <param name="ContentId">The content ID.</param>
/// <param name="ChunkSize">Chunk size the file was indexed with.</param>
/// <param name="IndexedAt">When it was indexed.</param>
/// <param name="Leaves">The leaf hashes, 32 bytes per chunk; empty when not loaded.</param>
/// <param name="Manifest">The signed manifest; empty when not loaded.</param>
/// <param name="Device">The device of the file indexed (0: not recorded).</param>
/// <param name="Inode">The inode of the file indexed (0: not recorded).</param>
/// <param name="CtimeNs">
/// The file's status-change time (ctime, nanoseconds) when it was indexed, recorded only when it was already in the past
/// by more than the file system's timestamp granularity when hashing began, so that any later change to the file gives
/// it another ctime; 0 when not recorded (chunks are then always re-hashed before being served).
/// </param>
public sealed record CatalogEntry(
    string Path,
    string ShareRoot,
    string Name,
    long Size,
    long MtimeNs,
    string ContentId,
    int ChunkSize,
    DateTimeOffset IndexedAt,
    ReadOnlyMemory<byte> Leaves,
    ReadOnlyMemory<byte> Manifest,
    long Device = 0,
    long Inode = 0,
    long CtimeNs = 0);

/// <summary>A shared path as the user added it; hidden entries (names starting with '.') are shared only when <paramref name="IncludeHidden"/>.</summary>
public sealed record ShareRecord(string Path, DateTimeOffset Added, bool IncludeHidden = false);

/// <summary>An entry under a shared path that is not shared, and why (a link, a special file, hidden, excluded by <c>.smignore</c>).</summary>
public sealed record SkippedEntry(string ShareRoot, string Path, string Reason);

/// <summary>
/// Shared paths and the catalog of indexed files: what the node serves, with the leaf hashes needed to prove every
/// chunk without re-hashing the file and the manifest this node signed for it. Catalog changes are not audited
/// (they are frequent and carry no trust decision); adding and removing a share is.
/// </summary>
public sealed class CatalogStore
{
    private const string Columns = "path, share_root, name, size, mtime_ns, content_id, chunk_size, indexed_at, device, inode, ctime_ns";

    /// <summary>The most skipped entries kept per shared path.</summary>
    public const int MaxSkippedPerShare = 10_000;

    private readonly SecureMeshDatabase _database;

    internal CatalogStore(SecureMeshDatabase database) => _database = database;

    /// <summary>Records a shared path (idempotent); audited as <c>share.added</c> the first time.</summary>
    public bool AddShare(string path) => AddShare(path, includeHidden: false);

    /// <summary>
    /// Records a shared path and whether its hidden entries are shared (a second call updates that choice);
    /// audited as <c>share.added</c> the first time.
    /// </summary>
    public bool AddShare(string path, bool includeHidden)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return _database.Write(tx =>
        {
            var added = SecureMeshDatabase.Execute(tx, "INSERT OR IGNORE INTO shares (path, added, include_hidden) VALUES ($p, $now, $h)",
                ("$p", path), ("$now", _database.NowMs()), ("$h", includeHidden ? 1 : 0)) == 1;
            if (added)
            {
                _database.Audit.AppendCore(tx, "share.added", null, includeHidden ? $"path={path} hidden=included" : $"path={path}");
            }
            else if (SecureMeshDatabase.Execute(tx, "UPDATE shares SET include_hidden = $h WHERE path = $p AND include_hidden <> $h",
                ("$p", path), ("$h", includeHidden ? 1 : 0)) == 1)
            {
                _database.Audit.AppendCore(tx, "share.changed", null, $"path={path} hidden={(includeHidden ? "included" : "excluded")}");
            }
            return added;
        });
    }

    /// <summary>Replaces the skipped entries recorded for <paramref name="shareRoot"/> (at most <see cref="MaxSkippedPerShare"/>).</summary>
    public void ReplaceSkipped(string shareRoot, IEnumerable<SkippedEntry> skipped)
    {
        ArgumentException.ThrowIfNullOrEmpty(shareRoot);
        ArgumentNullException.ThrowIfNull(skipped);
        _database.Write(tx =>
        {
            SecureMeshDatabase.Execute(tx, "DELETE FROM share_skipped WHERE share_root = $r", ("$r", shareRoot));
            foreach (var entry in skipped.Take(MaxSkippedPerShare))
            {
                SecureMeshDatabase.Execute(tx, "INSERT OR REPLACE INTO share_skipped (share_root, path, reason) VALUES ($r, $p, $why)",
                    ("$r", shareRoot), ("$p", entry.Path), ("$why", entry.Reason));
            }
            return 0;
        });
    }

    /// <summary>Every skipped entry, ordered by share and path.</summary>
    public IReadOnlyList<SkippedEntry> ListSkipped() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT share_root, path, reason FROM share_skipped ORDER BY share_root, path");
        using var reader = command.ExecuteReader();
        var list = new List<SkippedEntry>();
        while (reader.Read())
        {
            list.Add(new SkippedEntry(reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        return list;
    });

    /// <summary>Forgets a shared path and every catalog entry found under it; false when it was not shared.</summary>
    public bool RemoveShare(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return _database.Write(tx =>
        {
            var removed = SecureMeshDatabase.Execute(tx, "DELETE FROM shares WHERE path = $p", ("$p", path)) == 1;
            var entries = SecureMeshDatabase.Execute(tx, "DELETE FROM catalog WHERE share_root = $p", ("$p", path));
            SecureMeshDatabase.Execute(tx, "DELETE FROM share_skipped WHERE share_root = $p", ("$p", path));
            if (removed)
            {
                _database.Audit.AppendCore(tx, "share.removed", null, $"path={path} files={entries.ToString(CultureInfo.InvariantCulture)}");
            }
            return removed;
        });
    }

    /// <summary>Every shared path, in the order added.</summary>
    public IReadOnlyList<ShareRecord> ListShares() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT path, added, include_hidden FROM shares ORDER BY added, path");
        using var reader = command.ExecuteReader();
        var list = new List<ShareRecord>();
        while (reader.Read())
        {
            list.Add(new ShareRecord(reader.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(1)), reader.GetInt64(2) != 0));
        }
        return list;
    });

    /// <summary>Adds or replaces the catalog entry of <see cref="CatalogEntry.Path"/>.</summary>
    public void Upsert(CatalogEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        ContentIdFormat.Validate(entry.ContentId);
        _database.Write(tx => SecureMeshDatabase.Execute(tx,
            """
            INSERT INTO catalog (path, share_root, name, size, mtime_ns, content_id, chunk_size, indexed_at, leaves, manifest, device, inode, ctime_ns)
            VALUES ($path, $root, $name, $size, $mtime, $cid, $chunk, $at, $leaves, $manifest, $dev, $ino, $ctime)
            ON CONFLICT (path) DO UPDATE SET share_root = excluded.share_root, name = excluded.name, size = excluded.size,
                mtime_ns = excluded.mtime_ns, content_id = excluded.content_id, chunk_size = excluded.chunk_size,
                indexed_at = excluded.indexed_at, leaves = excluded.leaves, manifest = excluded.manifest,
                device = excluded.device, inode = excluded.inode, ctime_ns = excluded.ctime_ns
            """,
            ("$dev", entry.Device), ("$ino", entry.Inode), ("$ctime", entry.CtimeNs),
            ("$path", entry.Path), ("$root", entry.ShareRoot), ("$name", entry.Name), ("$size", entry.Size),
            ("$mtime", entry.MtimeNs), ("$cid", entry.ContentId), ("$chunk", entry.ChunkSize),
            ("$at", entry.IndexedAt.ToUnixTimeMilliseconds()), ("$leaves", entry.Leaves.ToArray()), ("$manifest", entry.Manifest.ToArray())));
    }

    /// <summary>Records which file (device, inode) an entry written before they were kept was indexed from; false when there is no such entry.</summary>
    public bool SetFileIdentity(string path, long device, long inode) =>
        _database.Write(tx => SecureMeshDatabase.Execute(tx,
            "UPDATE catalog SET device = $dev, inode = $ino WHERE path = $p AND device = 0 AND inode = 0",
            ("$p", path), ("$dev", device), ("$ino", inode)) == 1);

    /// <summary>Removes one file's entry; false when there was none.</summary>
    public bool Remove(string path) =>
        _database.Write(tx => SecureMeshDatabase.Execute(tx, "DELETE FROM catalog WHERE path = $p", ("$p", path)) == 1);

    /// <summary>The entry of one file, without leaves and manifest.</summary>
    public CatalogEntry? Get(string path) => Query($"SELECT {Columns} FROM catalog WHERE path = $p", false, ("$p", path)).FirstOrDefault();

    /// <summary>Every entry, without leaves and manifests, ordered by path.</summary>
    public IReadOnlyList<CatalogEntry> List() => Query($"SELECT {Columns} FROM catalog ORDER BY path", false);

    /// <summary>The entries holding <paramref name="contentId"/>, with leaves and manifest (several paths may hold the same bytes).</summary>
    public IReadOnlyList<CatalogEntry> FindByContentId(string contentId) =>
        Query($"SELECT {Columns}, leaves, manifest FROM catalog WHERE content_id = $cid ORDER BY indexed_at DESC", true, ("$cid", contentId));

    /// <summary>
    /// Entries where every whitespace-separated term (case-insensitive for ASCII) is found in the file's name or in
    /// the names of the folders it lies in, counted from the shared folder itself (its own name included, nothing
    /// above it), one per content ID, at most <paramref name="limit"/>.
    /// </summary>
    public IReadOnlyList<CatalogEntry> Search(string terms, int limit)
    {
        var (sql, parameters) = SearchQuery(terms);
        sql.Append(" GROUP BY content_id ORDER BY name, path LIMIT $limit");
        parameters.Add(("$limit", Math.Max(0, limit)));
        return Query(sql.ToString(), false, [.. parameters]);
    }

    /// <summary>
    /// The catalog rows every term matches: in the file's name or in the path from the shared folder's own name down.
    /// rtrim(root, every character but the separator) is the folder above the share (the usual SQLite dirname), so
    /// what follows it in the file's path is "Share/sub/file"; a shared single file has no folders of its own, so only
    /// its name is searched.
    /// </summary>
    private static (StringBuilder Sql, List<(string, object?)> Parameters) SearchQuery(string terms)
    {
        ArgumentNullException.ThrowIfNull(terms);
        var words = terms.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sql = new StringBuilder($"SELECT {Columns} FROM catalog WHERE 1 = 1");
        var parameters = new List<(string, object?)>();
        const string Relative = "CASE WHEN path = share_root THEN name ELSE substr(path, length(rtrim(share_root, replace(share_root, $sep, ''))) + 1) END";
        parameters.Add(("$sep", Path.DirectorySeparatorChar.ToString()));
        for (var i = 0; i < words.Length && i < 16; i++)
        {
            var name = "$t" + i.ToString(CultureInfo.InvariantCulture);
            sql.Append(CultureInfo.InvariantCulture, $" AND (name LIKE {name} ESCAPE '\\' OR {Relative} LIKE {name} ESCAPE '\\')");
            parameters.Add((name, "%" + EscapeLike(words[i]) + "%"));
        }
        return (sql, parameters);
    }

    /// <summary>
    /// Like <see cref="Search"/>, but only entries <paramref name="include"/> accepts count (an entry the asking peer may
    /// not see is skipped, and another path holding the same content may stand in for it), one per content ID, at most
    /// <paramref name="limit"/>, ordered by name then path. The callback runs under the database lock: keep it in memory.
    /// </summary>
    public IReadOnlyList<CatalogEntry> SearchWhere(string terms, int limit, Func<CatalogEntry, bool> include)
    {
        ArgumentNullException.ThrowIfNull(include);
        var (sql, parameters) = SearchQuery(terms);
        sql.Append(" ORDER BY name, path");
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, sql.ToString(), [.. parameters]);
            using var reader = command.ExecuteReader();
            var list = new List<CatalogEntry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (list.Count < limit && reader.Read())
            {
                var entry = new CatalogEntry(
                    reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4),
                    reader.GetString(5), reader.GetInt32(6), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
                    ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty);
                if (!seen.Contains(entry.ContentId) && include(entry))
                {
                    seen.Add(entry.ContentId);
                    list.Add(entry);
                }
            }
            return list;
        });
    }

    private static string EscapeLike(string text) =>
        text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal);

    private List<CatalogEntry> Query(string sql, bool withBlobs, params (string Name, object? Value)[] parameters) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, sql, parameters);
        using var reader = command.ExecuteReader();
        var list = new List<CatalogEntry>();
        while (reader.Read())
        {
            list.Add(new CatalogEntry(
                reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4),
                reader.GetString(5), reader.GetInt32(6), DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
                withBlobs ? Blob(reader, 11) : ReadOnlyMemory<byte>.Empty,
                withBlobs ? Blob(reader, 12) : ReadOnlyMemory<byte>.Empty,
                reader.GetInt64(8), reader.GetInt64(9), reader.GetInt64(10)));
        }
        return list;
    });

    private static byte[] Blob(SqliteDataReader reader, int ordinal) =>
        reader.IsDBNull(ordinal) ? [] : (byte[])reader.GetValue(ordinal);
}
