using System.Globalization;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;
using SecureMesh.Core.Identity;

namespace SecureMesh.Storage;

/// <summary>Where a quarantined download stands.</summary>
public enum QuarantineState
{
    /// <summary>Chunks are arriving into a <c>.part</c> file.</summary>
    Downloading,
    /// <summary>Whole; being checked against the release policy.</summary>
    Verifying,
    /// <summary>Failed a check; stays until the user releases or deletes it.</summary>
    Held,
    /// <summary>Moved out to the user's folder (final).</summary>
    Released,
    /// <summary>Removed (final).</summary>
    Deleted,
}

/// <summary>One quarantined download.</summary>
/// <param name="Id">Short numeric ID shown to the user.</param>
/// <param name="ContentId">The content ID it was requested by.</param>
/// <param name="AnnouncedName">The name exactly as the peer sent it (untrusted, for display after escaping only).</param>
/// <param name="SafeName">The sanitized name used on disk.</param>
/// <param name="Size">Expected size in bytes.</param>
/// <param name="SourcePeers">Peers the data came from.</param>
/// <param name="Publisher">The peer whose catalog announced the content.</param>
/// <param name="State">Where it stands.</param>
/// <param name="Reason">Why it is (or was last) held; kept after a manual release.</param>
/// <param name="Path">The file inside the quarantine folder (null once released or deleted).</param>
/// <param name="ReleasedPath">Where it was released to.</param>
/// <param name="Verified">True once the whole file matched its content ID.</param>
/// <param name="Created">When the download started.</param>
/// <param name="Updated">The last state change.</param>
public sealed record QuarantineRecord(
    long Id,
    string ContentId,
    string? AnnouncedName,
    string SafeName,
    long Size,
    IReadOnlyList<PeerId> SourcePeers,
    PeerId? Publisher,
    QuarantineState State,
    string? Reason,
    string? Path,
    string? ReleasedPath,
    bool Verified,
    DateTimeOffset Created,
    DateTimeOffset Updated,
    string? ReleasePending = null,
    bool ReleaseManual = false)
{
    /// <summary>The lowercase state name used in the database, the CLI and JSON.</summary>
    public string StateName => QuarantineStore.ToDb(State);
}

/// <summary>
/// Quarantine records. Every state change checks the current state inside its transaction and writes its audit
/// entry (<c>quarantine.added|held|released|deleted</c>) in the same transaction. Files are the node's business.
/// </summary>
public sealed class QuarantineStore
{
    /// <summary>Longest accepted reason; longer ones are cut.</summary>
    public const int MaxReasonLength = 1024;

    /// <summary>Longest stored announced name; longer ones are cut.</summary>
    public const int MaxAnnouncedNameLength = 1024;

    private const string Columns =
        "id, content_id, announced_name, safe_name, size, source_peers, publisher, state, reason, path, released_path, verified, created, updated, release_pending, release_manual";

    private readonly SecureMeshDatabase _database;

    internal QuarantineStore(SecureMeshDatabase database) => _database = database;

    /// <summary>
    /// Records a new download in state <c>downloading</c>; <paramref name="pathForId"/> gives its file path from the new ID.
    /// Audited as <c>quarantine.added</c>.
    /// </summary>
    public QuarantineRecord Add(string contentId, string? announcedName, string safeName, long size, PeerId? publisher,
        IEnumerable<PeerId>? sources, Func<long, string> pathForId)
    {
        ContentIdFormat.Validate(contentId);
        ArgumentException.ThrowIfNullOrEmpty(safeName);
        ArgumentNullException.ThrowIfNull(pathForId);
        if (size < 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "size must not be negative");
        }
        if (announcedName is { Length: > MaxAnnouncedNameLength })
        {
            announcedName = announcedName[..MaxAnnouncedNameLength];
        }
        var sourceText = JoinPeers(sources);
        return _database.Write(tx =>
        {
            var now = _database.NowMs();
            var id = (long)SecureMeshDatabase.Scalar(tx,
                """
                INSERT INTO quarantine (content_id, announced_name, safe_name, size, source_peers, publisher, state, created, updated)
                VALUES ($cid, $announced, $safe, $size, $sources, $publisher, 'downloading', $now, $now) RETURNING id
                """,
                ("$cid", contentId), ("$announced", announcedName), ("$safe", safeName), ("$size", size),
                ("$sources", sourceText), ("$publisher", publisher?.Text), ("$now", now))!;
            SecureMeshDatabase.Execute(tx, "UPDATE quarantine SET path = $path WHERE id = $id", ("$path", pathForId(id)), ("$id", id));
            _database.Audit.AppendCore(tx, "quarantine.added", publisher?.Text,
                $"id={Num(id)} content={contentId} name={Quote(safeName)} size={Num(size)}");
            return Get(tx, id)!;
        });
    }

    /// <summary>One item, or null when the ID is unknown.</summary>
    public QuarantineRecord? Get(long id) => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, $"SELECT {Columns} FROM quarantine WHERE id = $id", ("$id", id));
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRecord(reader) : null;
    });

    /// <summary>All items (or those in <paramref name="state"/>), oldest first.</summary>
    public IReadOnlyList<QuarantineRecord> List(QuarantineState? state = null) => _database.Read(connection =>
    {
        using var command = state is null
            ? SecureMeshDatabase.Command(connection, $"SELECT {Columns} FROM quarantine ORDER BY id")
            : SecureMeshDatabase.Command(connection, $"SELECT {Columns} FROM quarantine WHERE state = $state ORDER BY id", ("$state", ToDb(state.Value)));
        return ReadAll(command);
    });

    /// <summary>Items of <paramref name="contentId"/> that still have data in quarantine (downloading, verifying or held).</summary>
    public IReadOnlyList<QuarantineRecord> ListActive(string contentId)
    {
        ArgumentNullException.ThrowIfNull(contentId);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection,
                $"SELECT {Columns} FROM quarantine WHERE content_id = $cid AND state IN ('downloading', 'verifying', 'held') ORDER BY id",
                ("$cid", contentId));
            return ReadAll(command);
        });
    }

    /// <summary>Downloading or verifying → verifying, with the file's new path. Not audited (an internal step).</summary>
    public QuarantineRecord MarkVerifying(long id, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return Transition(id, [QuarantineState.Downloading, QuarantineState.Verifying], "verify", (tx, _) =>
        {
            SecureMeshDatabase.Execute(tx, "UPDATE quarantine SET state = 'verifying', path = $path, updated = $now WHERE id = $id",
                ("$path", path), ("$now", _database.NowMs()), ("$id", id));
        });
    }

    /// <summary>Verifying → held, recording whether the file matched its content ID. Audited as <c>quarantine.held</c> with the reason.</summary>
    public QuarantineRecord Hold(long id, string reason, bool verified)
    {
        reason = CheckReason(reason);
        return Transition(id, [QuarantineState.Verifying, QuarantineState.Downloading], "hold", (tx, item) =>
        {
            SecureMeshDatabase.Execute(tx, "UPDATE quarantine SET state = 'held', reason = $reason, verified = $verified, updated = $now WHERE id = $id",
                ("$reason", reason), ("$verified", verified ? 1 : 0), ("$now", _database.NowMs()), ("$id", id));
            _database.Audit.AppendCore(tx, "quarantine.held", item.Publisher?.Text,
                $"id={Num(id)} content={item.ContentId} name={Quote(item.SafeName)} reason={Quote(reason)}");
        });
    }

    /// <summary>
    /// Records another publisher for a downloading item: one more peer that signed a manifest for the same content ID
    /// (the transfer engine uses it when the first publisher lost trust during the download). Audited as <c>quarantine.publisher</c>.
    /// </summary>
    public QuarantineRecord SetPublisher(long id, PeerId publisher)
    {
        ArgumentNullException.ThrowIfNull(publisher);
        return Transition(id, [QuarantineState.Downloading], "change the publisher of", (tx, item) =>
        {
            SecureMeshDatabase.Execute(tx, "UPDATE quarantine SET publisher = $p, updated = $now WHERE id = $id",
                ("$p", publisher.Text), ("$now", _database.NowMs()), ("$id", id));
            _database.Audit.AppendCore(tx, "quarantine.publisher", publisher.Text,
                $"id={Num(id)} content={item.ContentId} was={item.Publisher?.Text ?? "-"}");
        });
    }

    /// <summary>
    /// Verifying (automatic, <paramref name="manual"/> false, which also marks it verified) or held (manual) → released to
    /// <paramref name="releasedPath"/>. Audited as <c>quarantine.released</c>; a manual release records the reason it was held.
    /// </summary>
    public QuarantineRecord MarkReleased(long id, string releasedPath, bool manual)
    {
        ArgumentException.ThrowIfNullOrEmpty(releasedPath);
        QuarantineState[] from = manual ? [QuarantineState.Held] : [QuarantineState.Verifying];
        return Transition(id, from, "release", (tx, item) =>
        {
            SecureMeshDatabase.Execute(tx,
                "UPDATE quarantine SET state = 'released', released_path = $to, path = NULL, verified = 1, release_pending = NULL, updated = $now WHERE id = $id",
                ("$to", releasedPath), ("$now", _database.NowMs()), ("$id", id));
            var detail = $"id={Num(id)} content={item.ContentId} name={Quote(item.SafeName)} to={Quote(releasedPath)} mode={(manual ? "manual" : "auto")}";
            if (manual)
            {
                detail += $" held_reason={Quote(item.Reason ?? "-")}";
            }
            _database.Audit.AppendCore(tx, "quarantine.released", item.Publisher?.Text, Cut(detail, AuditLog.MaxDetailLength));
        });
    }

    /// <summary>
    /// Records, before the file moves, where a release of a verifying (automatic) or held (<paramref name="manual"/>)
    /// item is about to put it (null: no release under way). Written first so a crash between the move and
    /// <see cref="MarkReleased"/> can be settled at the next start. Not audited (the release itself is).
    /// </summary>
    public QuarantineRecord SetReleasePending(long id, string? destination, bool manual)
    {
        QuarantineState[] from = destination is null
            ? [QuarantineState.Verifying, QuarantineState.Held]
            : manual ? [QuarantineState.Held] : [QuarantineState.Verifying];
        return Transition(id, from, "release", (tx, _) =>
        {
            SecureMeshDatabase.Execute(tx, "UPDATE quarantine SET release_pending = $to, release_manual = $manual WHERE id = $id",
                ("$to", destination), ("$manual", manual ? 1 : 0), ("$id", id));
        });
    }

    /// <summary>Items with a release recorded but not finished (a crash came between), oldest first.</summary>
    public IReadOnlyList<QuarantineRecord> ListReleasePending() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection,
            $"SELECT {Columns} FROM quarantine WHERE release_pending IS NOT NULL AND state IN ('verifying', 'held') ORDER BY id");
        return ReadAll(command);
    });

    /// <summary>Downloading, verifying or held → deleted. Audited as <c>quarantine.deleted</c> with <paramref name="why"/>.</summary>
    public QuarantineRecord MarkDeleted(long id, string why)
    {
        why = CheckReason(why);
        return Transition(id, [QuarantineState.Downloading, QuarantineState.Verifying, QuarantineState.Held], "delete", (tx, item) =>
        {
            SecureMeshDatabase.Execute(tx, "UPDATE quarantine SET state = 'deleted', path = NULL, updated = $now WHERE id = $id",
                ("$now", _database.NowMs()), ("$id", id));
            _database.Audit.AppendCore(tx, "quarantine.deleted", item.Publisher?.Text,
                $"id={Num(id)} content={item.ContentId} name={Quote(item.SafeName)} was={ToDb(item.State)} why={Quote(why)}");
        });
    }

    internal static string ToDb(QuarantineState state) => state switch
    {
        QuarantineState.Downloading => "downloading",
        QuarantineState.Verifying => "verifying",
        QuarantineState.Held => "held",
        QuarantineState.Released => "released",
        _ => "deleted",
    };

    private static QuarantineState FromDb(string text) => text switch
    {
        "downloading" => QuarantineState.Downloading,
        "verifying" => QuarantineState.Verifying,
        "held" => QuarantineState.Held,
        "released" => QuarantineState.Released,
        _ => QuarantineState.Deleted,
    };

    private QuarantineRecord Transition(long id, QuarantineState[] from, string verb, Action<SqliteTransaction, QuarantineRecord> apply) =>
        _database.Write(tx =>
        {
            var item = Get(tx, id) ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no quarantine item {Num(id)}");
            if (Array.IndexOf(from, item.State) < 0)
            {
                var detail = item.State switch
                {
                    QuarantineState.Released => $"it was already released to {item.ReleasedPath}",
                    QuarantineState.Deleted => "it was deleted",
                    _ => $"it is {ToDb(item.State)}",
                };
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"cannot {verb} quarantine item {Num(id)}: {detail}");
            }
            apply(tx, item);
            return Get(tx, id)!;
        });

    private static QuarantineRecord? Get(SqliteTransaction tx, long id)
    {
        using var command = SecureMeshDatabase.Command(tx, $"SELECT {Columns} FROM quarantine WHERE id = $id", ("$id", id));
        using var reader = command.ExecuteReader();
        return reader.Read() ? ReadRecord(reader) : null;
    }

    private static List<QuarantineRecord> ReadAll(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        var items = new List<QuarantineRecord>();
        while (reader.Read())
        {
            items.Add(ReadRecord(reader));
        }
        return items;
    }

    private static QuarantineRecord ReadRecord(SqliteDataReader reader) => new(
        reader.GetInt64(0),
        reader.GetString(1),
        reader.IsDBNull(2) ? null : reader.GetString(2),
        reader.GetString(3),
        reader.GetInt64(4),
        SplitPeers(reader.GetString(5)),
        reader.IsDBNull(6) ? null : PeerId.TryParse(reader.GetString(6), out var publisher) ? publisher : null,
        FromDb(reader.GetString(7)),
        reader.IsDBNull(8) ? null : reader.GetString(8),
        reader.IsDBNull(9) ? null : reader.GetString(9),
        reader.IsDBNull(10) ? null : reader.GetString(10),
        reader.GetInt64(11) != 0,
        StateNames.FromMs(reader.GetInt64(12)),
        StateNames.FromMs(reader.GetInt64(13)),
        reader.IsDBNull(14) ? null : reader.GetString(14),
        reader.GetInt64(15) != 0);

    private static string JoinPeers(IEnumerable<PeerId>? peers) =>
        peers is null ? string.Empty : string.Join(',', peers.Select(p => p.Text).Distinct(StringComparer.Ordinal));

    private static PeerId[] SplitPeers(string text) =>
        [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(t => PeerId.TryParse(t, out var p) ? p : null)
            .OfType<PeerId>()];

    private static string CheckReason(string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        return Cut(reason.Trim(), MaxReasonLength);
    }

    private static string Cut(string text, int max) => text.Length <= max ? text : text[..(max - 1)] + "…";

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>Quotes a value for a one-line audit detail (names and reasons may hold spaces).</summary>
    private static string Quote(string text) =>
        "\"" + new string([.. text.Select(c => char.IsControl(c) ? ' ' : c)]).Replace("\"", "'", StringComparison.Ordinal) + "\"";
}
