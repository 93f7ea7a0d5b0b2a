using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>
/// The append-only, hash-chained audit log. Each entry's hash is SHA-256 over a canonical encoding of
/// (seq, time, event, peer_id, detail, prev_hash); the first entry chains from 32 zero bytes, so editing,
/// deleting or reordering any entry breaks the chain at that point.
/// </summary>
/// <remarks>
/// Details are stored as given: callers must never pass secrets (keys, passphrases, tokens).
/// Removing entries from the end cannot be told from a shorter log; an external anchor (the last hash) would catch it.
/// </remarks>
public sealed class AuditLog
{
    /// <summary>Longest accepted event name.</summary>
    public const int MaxEventLength = 64;

    /// <summary>Longest accepted detail text.</summary>
    public const int MaxDetailLength = 4096;

    private const int HashLength = 32;
    private static readonly byte[] Domain = "securemesh/audit/v1\0"u8.ToArray();

    private readonly SecureMeshDatabase _database;

    internal AuditLog(SecureMeshDatabase database) => _database = database;

    /// <summary>Appends an entry in its own transaction, e.g. <c>handshake.rejected</c>, <c>peer.banned</c>, <c>quarantine.released</c>; detail must not hold secrets.</summary>
    public AuditEntry Append(string eventName, PeerId? peer, string detail) => AppendWithPeerText(eventName, peer?.Text, detail);

    /// <summary>Appends an entry about no particular peer; detail must not hold secrets.</summary>
    public AuditEntry Append(string eventName, string detail) => AppendWithPeerText(eventName, null, detail);

    /// <summary>Appends an entry naming a peer by raw text (e.g. an ID that failed to parse, at most 128 characters); detail must not hold secrets.</summary>
    public AuditEntry AppendWithPeerText(string eventName, string? peerId, string detail)
    {
        ValidateEntry(eventName, peerId, detail);
        return _database.Write(tx => AppendCore(tx, eventName, peerId, detail));
    }

    /// <summary>Entries in seq order, optionally from <paramref name="since"/> on, and at most the last <paramref name="limit"/>.</summary>
    public IReadOnlyList<AuditEntry> List(DateTimeOffset? since = null, int? limit = null)
    {
        if (limit is < 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "limit must not be negative");
        }
        return _database.Read(connection =>
        {
            // The newest `limit` entries, returned oldest first.
            using var command = SecureMeshDatabase.Command(connection,
                """
                SELECT seq, time, event, peer_id, detail, prev_hash, hash FROM (
                    SELECT * FROM audit_log WHERE time >= $since ORDER BY seq DESC LIMIT $limit
                ) ORDER BY seq
                """,
                ("$since", since?.ToUnixTimeMilliseconds() ?? long.MinValue),
                ("$limit", (long?)limit ?? -1));
            using var reader = command.ExecuteReader();
            var entries = new List<AuditEntry>();
            while (reader.Read())
            {
                entries.Add(ReadEntry(reader));
            }
            return entries;
        });
    }

    /// <summary>Number of entries.</summary>
    public long Count() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT count(*) FROM audit_log");
        return (long)command.ExecuteScalar()!;
    });

    /// <summary>Walks the whole chain; reports the first entry whose hash or link is wrong.</summary>
    public AuditVerification Verify() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection,
            "SELECT seq, time, event, peer_id, detail, prev_hash, hash FROM audit_log ORDER BY seq");
        using var reader = command.ExecuteReader();
        var previous = new byte[HashLength];
        long expectedSeq = 1;
        long count = 0;
        Span<byte> computed = stackalloc byte[HashLength];
        while (reader.Read())
        {
            count++;
            var seq = reader.GetInt64(0);
            var time = reader.GetInt64(1);
            var eventName = reader.GetString(2);
            var peerId = reader.IsDBNull(3) ? null : reader.GetString(3);
            var detail = reader.GetString(4);
            // Typed reads would throw on a tampered column; a wrong type is just another broken entry.
            if (reader.GetValue(5) is not byte[] { Length: HashLength } prevHash || reader.GetValue(6) is not byte[] { Length: HashLength } hash)
            {
                return new AuditVerification(false, count, seq, "prev_hash or hash is not a 32-byte value: the entry was altered");
            }
            if (seq != expectedSeq)
            {
                return new AuditVerification(false, count, seq, $"expected seq {expectedSeq}, found {seq}: entries are missing");
            }
            if (!prevHash.AsSpan().SequenceEqual(previous))
            {
                return new AuditVerification(false, count, seq, "prev_hash does not match the previous entry's hash: entries were removed or reordered");
            }
            ComputeHash(seq, time, eventName, peerId, detail, prevHash, computed);
            if (!computed.SequenceEqual(hash))
            {
                return new AuditVerification(false, count, seq, "hash does not match the entry's contents: the entry was altered");
            }
            previous = hash;
            expectedSeq = seq + 1;
        }
        return new AuditVerification(true, count, null, null)
        {
            HeadSeq = expectedSeq - 1,
            HeadHash = count == 0 ? string.Empty : Convert.ToHexStringLower(previous),
        };
    });

    /// <summary>Appends inside a caller's transaction, so a change and its audit entry commit together.</summary>
    internal AuditEntry AppendCore(SqliteTransaction transaction, string eventName, string? peerId, string detail)
    {
        long seq = 1;
        var prevHash = new byte[HashLength];
        using (var last = SecureMeshDatabase.Command(transaction, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"))
        using (var reader = last.ExecuteReader())
        {
            if (reader.Read())
            {
                seq = reader.GetInt64(0) + 1;
                prevHash = (byte[])reader.GetValue(1);
            }
        }
        var time = _database.NowMs();
        var hash = new byte[HashLength];
        ComputeHash(seq, time, eventName, peerId, detail, prevHash, hash);
        SecureMeshDatabase.Execute(transaction,
            "INSERT INTO audit_log (seq, time, event, peer_id, detail, prev_hash, hash) VALUES ($seq, $time, $event, $peer, $detail, $prev, $hash)",
            ("$seq", seq), ("$time", time), ("$event", eventName), ("$peer", peerId), ("$detail", detail), ("$prev", prevHash), ("$hash", hash));
        return new AuditEntry(seq, StateNames.FromMs(time), eventName, peerId, detail,
            Convert.ToHexStringLower(prevHash), Convert.ToHexStringLower(hash));
    }

    internal static void ValidateEntry(string eventName, string? peerId, string detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        if (string.IsNullOrEmpty(eventName) || eventName.Length > MaxEventLength
            || !eventName.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '_' or '-'))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"invalid audit event name: use 1 to {MaxEventLength} lowercase letters, digits, '.', '_' or '-' (e.g. peer.banned)");
        }
        if (peerId is { Length: > 128 })
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "audit peer ID is too long");
        }
        if (detail.Length > MaxDetailLength)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"audit detail is longer than {MaxDetailLength} characters");
        }
    }

    /// <summary>
    /// Canonical encoding: domain, seq (int64 BE), time in Unix ms (int64 BE), then event, peer ID and detail each as
    /// a presence byte plus UTF-8 length (int32 BE) and bytes, then the 32-byte previous hash.
    /// </summary>
    internal static void ComputeHash(long seq, long time, string eventName, string? peerId, string detail, ReadOnlySpan<byte> prevHash, Span<byte> destination)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> number = stackalloc byte[8];
        hash.AppendData(Domain);
        BinaryPrimitives.WriteInt64BigEndian(number, seq);
        hash.AppendData(number);
        BinaryPrimitives.WriteInt64BigEndian(number, time);
        hash.AppendData(number);
        AppendString(hash, eventName);
        AppendString(hash, peerId);
        AppendString(hash, detail);
        hash.AppendData(prevHash);
        hash.GetHashAndReset(destination);
    }

    private static void AppendString(IncrementalHash hash, string? text)
    {
        Span<byte> header = stackalloc byte[5];
        if (text is null)
        {
            header[0] = 0;
            hash.AppendData(header[..1]);
            return;
        }
        var bytes = Encoding.UTF8.GetBytes(text);
        header[0] = 1;
        BinaryPrimitives.WriteInt32BigEndian(header[1..], bytes.Length);
        hash.AppendData(header);
        hash.AppendData(bytes);
    }

    private static AuditEntry ReadEntry(SqliteDataReader reader) => new(
        reader.GetInt64(0),
        StateNames.FromMs(reader.GetInt64(1)),
        reader.GetString(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        reader.GetString(4),
        Convert.ToHexStringLower((byte[])reader.GetValue(5)),
        Convert.ToHexStringLower((byte[])reader.GetValue(6)));
}
