using System.Globalization;
using System.Text;
using Microsoft.Data.Sqlite;

namespace SecureMesh.Storage;

/// <summary>A download in progress: enough to resume it after a restart.</summary>
/// <param name="ContentId">The content ID.</param>
/// <param name="Name">The announced name.</param>
/// <param name="Size">File size.</param>
/// <param name="ChunkSize">Chunk size.</param>
/// <param name="Manifest">The verified, signed manifest.</param>
/// <param name="QuarantineId">The quarantine item the chunks are written into.</param>
/// <param name="OutDir">Release folder override, if any.</param>
/// <param name="Created">When it started.</param>
/// <param name="Failed">Why it failed, when it did: such a download keeps its verified chunks for a `get` to resume, but is never resumed by itself.</param>
public sealed record DownloadRecord(string ContentId, string? Name, long Size, int ChunkSize, ReadOnlyMemory<byte> Manifest,
    long? QuarantineId, string? OutDir, DateTimeOffset Created, string? Failed = null);

/// <summary>
/// Download state: one row per download and one per verified chunk. The transfer engine only marks a chunk here after
/// its bytes are on disk (fsynced), so a chunk listed here is never data that did not verify.
/// </summary>
public sealed class DownloadStore
{
    private readonly SecureMeshDatabase _database;

    internal DownloadStore(SecureMeshDatabase database) => _database = database;

    /// <summary>Creates or replaces the download row (keeping verified chunks only when the quarantine item is unchanged).</summary>
    public void Begin(string contentId, string? name, long size, int chunkSize, ReadOnlyMemory<byte> manifest, long quarantineId, string? outDir)
    {
        ContentIdFormat.Validate(contentId);
        _database.Write(tx =>
        {
            var existing = SecureMeshDatabase.Scalar(tx, "SELECT quarantine_id FROM downloads WHERE content_id = $cid", ("$cid", contentId));
            if (existing is not null && Convert.ToInt64(existing, CultureInfo.InvariantCulture) != quarantineId)
            {
                // A different part file: chunks verified into the old one say nothing about the new one.
                SecureMeshDatabase.Execute(tx, "DELETE FROM download_chunks WHERE content_id = $cid", ("$cid", contentId));
            }
            var now = _database.NowMs();
            return SecureMeshDatabase.Execute(tx,
                """
                INSERT INTO downloads (content_id, name, size, chunk_size, created, updated, manifest, quarantine_id, out_dir)
                VALUES ($cid, $name, $size, $chunk, $now, $now, $manifest, $qid, $out)
                ON CONFLICT (content_id) DO UPDATE SET name = excluded.name, size = excluded.size, chunk_size = excluded.chunk_size,
                    updated = excluded.updated, manifest = excluded.manifest, quarantine_id = excluded.quarantine_id, out_dir = excluded.out_dir,
                    failed = NULL
                """,
                ("$cid", contentId), ("$name", name), ("$size", size), ("$chunk", chunkSize), ("$now", now),
                ("$manifest", manifest.ToArray()), ("$qid", quarantineId), ("$out", outDir));
        });
    }

    /// <summary>One download, or null.</summary>
    public DownloadRecord? Get(string contentId) => Query("WHERE content_id = $cid", ("$cid", contentId)).FirstOrDefault();

    /// <summary>Every download in progress, oldest first.</summary>
    public IReadOnlyList<DownloadRecord> List() => Query("ORDER BY created");

    /// <summary>The downloads to resume after a restart: those that did not fail, oldest first.</summary>
    public IReadOnlyList<DownloadRecord> ListResumable() => Query("WHERE failed IS NULL ORDER BY created");

    /// <summary>Marks a download failed: its verified chunks stay for a `get` to resume, but it is not resumed by itself.</summary>
    public bool MarkFailed(string contentId, string reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        var stored = reason.Length > 512 ? reason[..512] : reason;
        return _database.Write(tx => SecureMeshDatabase.Execute(tx, "UPDATE downloads SET failed = $why, updated = $now WHERE content_id = $cid",
            ("$cid", contentId), ("$why", stored), ("$now", _database.NowMs())) == 1);
    }

    /// <summary>Marks chunks verified (their data must already be durable on disk), in one transaction.</summary>
    public void MarkVerified(string contentId, IReadOnlyList<long> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        if (chunks.Count == 0)
        {
            return;
        }
        _database.Write(tx =>
        {
            using var command = SecureMeshDatabase.Command(tx,
                "INSERT OR IGNORE INTO download_chunks (content_id, chunk_index, verified) VALUES ($cid, $i, 1)", ("$cid", contentId), ("$i", 0L));
            var index = command.Parameters["$i"];
            foreach (var chunk in chunks)
            {
                index.Value = chunk;
                command.ExecuteNonQuery();
            }
            SecureMeshDatabase.Execute(tx, "UPDATE downloads SET updated = $now WHERE content_id = $cid", ("$cid", contentId), ("$now", _database.NowMs()));
            return 0;
        });
    }

    /// <summary>The chunks marked verified.</summary>
    public IReadOnlyList<long> VerifiedChunks(string contentId) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection,
            "SELECT chunk_index FROM download_chunks WHERE content_id = $cid AND verified = 1 ORDER BY chunk_index", ("$cid", contentId));
        using var reader = command.ExecuteReader();
        var list = new List<long>();
        while (reader.Read())
        {
            list.Add(reader.GetInt64(0));
        }
        return list;
    });

    /// <summary>Forgets a download and its chunks.</summary>
    public bool Remove(string contentId) =>
        _database.Write(tx => SecureMeshDatabase.Execute(tx, "DELETE FROM downloads WHERE content_id = $cid", ("$cid", contentId)) == 1);

    private List<DownloadRecord> Query(string where, params (string Name, object? Value)[] parameters) => _database.Read(connection =>
    {
        var sql = new StringBuilder("SELECT content_id, name, size, chunk_size, manifest, quarantine_id, out_dir, created, failed FROM downloads ").Append(where);
        using var command = SecureMeshDatabase.Command(connection, sql.ToString(), parameters);
        using var reader = command.ExecuteReader();
        var list = new List<DownloadRecord>();
        while (reader.Read())
        {
            list.Add(new DownloadRecord(
                reader.GetString(0),
                reader.IsDBNull(1) ? null : reader.GetString(1),
                reader.GetInt64(2),
                reader.GetInt32(3),
                reader.IsDBNull(4) ? ReadOnlyMemory<byte>.Empty : (byte[])reader.GetValue(4),
                reader.IsDBNull(5) ? null : reader.GetInt64(5),
                reader.IsDBNull(6) ? null : reader.GetString(6),
                DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(7)),
                reader.IsDBNull(8) ? null : reader.GetString(8)));
        }
        return list;
    });
}
