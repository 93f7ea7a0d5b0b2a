using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Quarantine;

/// <summary>What <see cref="QuarantineManager.CompleteAsync"/> decided.</summary>
/// <param name="Item">The item after the decision (its <c>Reason</c> says why it is held; <c>ReleasedPath</c> where it went).</param>
/// <param name="Released">True when every check passed and the file was moved to the download folder.</param>
public sealed record QuarantineOutcome(QuarantineRecord Item, bool Released);

/// <summary>
/// The quarantine pipeline. Every download is assembled in <c>&lt;home&gt;/quarantine</c> (0700; files 0600, never
/// executable, no permission from a peer is ever applied) and leaves it only through <see cref="Release"/>: automatically
/// when the whole file matches its content ID, the content is not blocked, the scanner passes and the publisher is trusted;
/// otherwise it is held with the reason until the user releases or deletes it. Blocked content is never released.
/// </summary>
/// <remarks>
/// Use from the transfer engine: <see cref="IsBlocked"/> before requesting; <see cref="BeginDownload"/> when a download
/// starts (it returns the existing item to resume one); write verified chunks through <see cref="OpenPart"/>;
/// <see cref="CompleteAsync"/> once every chunk is written; <see cref="AbortForBlockedContent"/> when a block appears mid-way.
/// Thread-safe; the CLI may act on the same items from another process (the database arbitrates each transition).
/// </remarks>
public sealed partial class QuarantineManager
{
    /// <summary>The quarantine folder's name inside the data directory.</summary>
    public const string FolderName = "quarantine";

    private const int MaxNameAttempts = 10_000;

    private readonly SecureMeshDatabase _database;
    private readonly ScannerRunner? _scanner;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();

    /// <summary>
    /// A manager for the data directory <paramref name="home"/>; <paramref name="scanner"/> null reads the
    /// <c>scanner</c> settings at each completion, so a changed setting applies without a restart.
    /// </summary>
    public QuarantineManager(SecureMeshDatabase database, string home, ScannerRunner? scanner = null, ILogger<QuarantineManager>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentException.ThrowIfNullOrEmpty(home);
        _database = database;
        _scanner = scanner;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        Folder = Path.Combine(Path.GetFullPath(home), FolderName);
    }

    /// <summary>The quarantine folder.</summary>
    public string Folder { get; }

    /// <summary>True when <paramref name="contentId"/> is blocked: never request it.</summary>
    public bool IsBlocked(string contentId) => _database.Trust.IsContentBlocked(contentId);

    /// <summary>All items, oldest first.</summary>
    public IReadOnlyList<QuarantineRecord> List() => _database.Quarantine.List();

    /// <summary>One item; an unknown ID is a NotFound error.</summary>
    public QuarantineRecord Get(long id) =>
        _database.Quarantine.Get(id) ?? throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no quarantine item {Num(id)}");

    /// <summary>
    /// Starts (or resumes) a download: returns the item whose <c>Path</c> is an owner-only <c>.part</c> file in quarantine.
    /// A download of the same content already in progress is returned as is. Blocked content is an Unauthorized error.
    /// </summary>
    public QuarantineRecord BeginDownload(string contentId, string? announcedName, long size, PeerId? publisher, IEnumerable<PeerId>? sources)
    {
        ContentIdFormat.Validate(contentId);
        ThrowIfBlocked(contentId, "requested");
        EnsureFolder();
        lock (_gate)
        {
            var existing = _database.Quarantine.ListActive(contentId).FirstOrDefault(i => i.State == QuarantineState.Downloading);
            if (existing is not null)
            {
                CreatePartFile(PartPath(existing.Id), truncate: false);
                return existing;
            }
            var item = _database.Quarantine.Add(contentId, announcedName, SafeFileName.Sanitize(announcedName), size, publisher, sources, PartPath);
            CreatePartFile(item.Path!, truncate: true);
            return item;
        }
    }

    /// <summary>Opens the <c>.part</c> file of a downloading item for writing verified chunks at their offsets.</summary>
    public FileStream OpenPart(long id)
    {
        var item = Get(id);
        if (item.State != QuarantineState.Downloading)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"quarantine item {Num(id)} is {item.StateName}, not downloading");
        }
        return new FileStream(PartPath(id), new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.ReadWrite,
            // Several peers' chunks may be written at their offsets through separate streams.
            Share = FileShare.ReadWrite,
        });
    }

    /// <summary>
    /// Called when every chunk is written: checks the whole file with <paramref name="verifyWholeFile"/> (given the file's
    /// path; true when it matches the content ID), the content blocklist, the scanner and trust in the publisher, then
    /// releases to the download folder or holds with every failed check as the reason. Cancelling leaves the item
    /// <c>verifying</c>; calling again resumes.
    /// </summary>
    public Task<QuarantineOutcome> CompleteAsync(long id, Func<string, CancellationToken, Task<bool>> verifyWholeFile, CancellationToken cancellationToken) =>
        CompleteAsync(id, verifyWholeFile, null, cancellationToken);

    /// <summary>As <see cref="CompleteAsync(long, Func{string, CancellationToken, Task{bool}}, CancellationToken)"/>, releasing into <paramref name="releaseDirectory"/> (null: the <c>download-dir</c> setting).</summary>
    public async Task<QuarantineOutcome> CompleteAsync(long id, Func<string, CancellationToken, Task<bool>> verifyWholeFile, string? releaseDirectory, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(verifyWholeFile);
        var item = Get(id);
        if (item.State is not (QuarantineState.Downloading or QuarantineState.Verifying))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"cannot complete quarantine item {Num(id)}: it is {item.StateName}");
        }
        var path = ItemPath(item);
        lock (_gate)
        {
            var part = PartPath(id);
            if (File.Exists(part))
            {
                // Within the quarantine folder; the final name there helps the user and type-sniffing scanners.
                File.Move(part, path, overwrite: true);
            }
            else if (!File.Exists(path))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"the data of quarantine item {Num(id)} is missing from {Folder}");
            }
            SetOwnerOnly(path);
            item = _database.Quarantine.MarkVerifying(id, path);
        }

        var reasons = new List<string>();
        var verified = false;
        var length = new FileInfo(path).Length;
        if (length != item.Size)
        {
            reasons.Add($"the file is {Num(length)} bytes, expected {Num(item.Size)}");
        }
        else
        {
            try
            {
                verified = await verifyWholeFile(path, cancellationToken).ConfigureAwait(false);
                if (!verified)
                {
                    reasons.Add($"the file does not match its content ID {item.ContentId}");
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                reasons.Add($"whole-file verification failed: {ScannerRunner.Clean(e.Message)}");
            }
        }
        var blocked = IsBlocked(item.ContentId);
        if (blocked)
        {
            reasons.Add($"content {item.ContentId} is blocked");
        }
        // Data that is not the requested content, or content that may never leave, is not worth scanning.
        if (verified && !blocked)
        {
            var scan = await (_scanner ?? ScannerRunner.FromConfig(_database.Config)).ScanAsync(path, cancellationToken).ConfigureAwait(false);
            if (!scan.Passed)
            {
                reasons.Add(scan.Reason!);
            }
        }
        if (item.Publisher is null)
        {
            reasons.Add("the publisher is unknown");
        }
        else if (_database.Trust.GetPeer(item.Publisher)?.State != PeerState.Trusted)
        {
            reasons.Add($"publisher {item.Publisher} is not trusted");
        }

        if (reasons.Count == 0)
        {
            try
            {
                var released = ReleaseCore(id, releaseDirectory, manual: false);
                return new QuarantineOutcome(released, true);
            }
            catch (SecureMeshException e) when (e.Kind is SecureMeshErrorKind.Storage or SecureMeshErrorKind.InvalidInput)
            {
                reasons.Add($"automatic release failed: {e.Message}");
            }
        }
        var held = _database.Quarantine.Hold(id, string.Join("; ", reasons), verified);
        LogHeld(_logger, id, held.Reason ?? string.Empty);
        return new QuarantineOutcome(held, false);
    }

    /// <summary>
    /// Releases a held item on the user's say-so into <paramref name="toDirectory"/> (default: the <c>download-dir</c> setting),
    /// never overwriting: an existing name gets " (1)", " (2)"… The released file is 0600. Refused for blocked content,
    /// for a file that did not match its content ID, and for items not held.
    /// </summary>
    public QuarantineRecord Release(long id, string? toDirectory = null) => ReleaseCore(id, toDirectory, manual: true);

    /// <summary>Deletes an item's data (downloading, verifying or held); audited as <c>quarantine.deleted</c> with <paramref name="reason"/>.</summary>
    public QuarantineRecord Delete(long id, string reason = "deleted by the user")
    {
        lock (_gate)
        {
            var item = Get(id);
            if (item.State is QuarantineState.Released or QuarantineState.Deleted)
            {
                // Let the store word the conflict.
                return _database.Quarantine.MarkDeleted(id, reason);
            }
            RemoveData(item);
            var deleted = _database.Quarantine.MarkDeleted(id, reason);
            LogDeleted(_logger, id, reason);
            return deleted;
        }
    }

    /// <summary>
    /// Deletes every downloading, verifying or held item of <paramref name="contentId"/> with its data (call when the
    /// content is blocked mid-download, then stop writing to the part file). Returns how many items were removed.
    /// </summary>
    public int AbortForBlockedContent(string contentId)
    {
        ArgumentNullException.ThrowIfNull(contentId);
        var count = 0;
        lock (_gate)
        {
            foreach (var item in _database.Quarantine.ListActive(contentId))
            {
                RemoveData(item);
                try
                {
                    _database.Quarantine.MarkDeleted(item.Id, "content blocked");
                    LogDeleted(_logger, item.Id, "content blocked");
                    count++;
                }
                catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.Conflict)
                {
                    // Another process finished with it meanwhile.
                }
            }
        }
        return count;
    }

    /// <summary>The download folder from the <c>download-dir</c> setting, with a leading <c>~</c> expanded.</summary>
    public string DownloadDirectory()
    {
        var configured = _database.Config.Get(NodeSettings.DownloadDir) ?? NodeSettings.Get(NodeSettings.DownloadDir).Default;
        return ExpandHome(configured);
    }

    internal static string ExpandHome(string path)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
            if (string.IsNullOrEmpty(home))
            {
                throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"cannot expand '~' in {path}: no home directory");
            }
            path = path.Length == 1 ? home : Path.Combine(home, path[2..]);
        }
        return Path.GetFullPath(path);
    }

    internal string PartPath(long id) => Path.Combine(Folder, Num(id) + ".part");

    internal string ItemPath(QuarantineRecord item) => Path.Combine(Folder, Num(item.Id) + "-" + item.SafeName);

    private QuarantineRecord ReleaseCore(long id, string? toDirectory, bool manual)
    {
        lock (_gate)
        {
            var item = Get(id);
            var wanted = manual ? QuarantineState.Held : QuarantineState.Verifying;
            if (item.State != wanted)
            {
                var detail = item.State switch
                {
                    QuarantineState.Released => $"it was already released to {item.ReleasedPath}",
                    QuarantineState.Deleted => "it was deleted",
                    _ => $"it is {item.StateName}",
                };
                throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"cannot release quarantine item {Num(id)}: {detail}");
            }
            if (IsBlocked(item.ContentId))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Unauthorized,
                    $"cannot release quarantine item {Num(id)}: content {item.ContentId} is blocked and is never released (delete it instead)");
            }
            if (manual && !item.Verified)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Unauthorized,
                    $"cannot release quarantine item {Num(id)}: it did not verify against content ID {item.ContentId} (delete it instead)");
            }
            var source = item.Path ?? ItemPath(item);
            if (!File.Exists(source))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"the data of quarantine item {Num(id)} is missing from {Folder}");
            }
            var directory = toDirectory is null ? DownloadDirectory() : ExpandHome(toDirectory);
            try
            {
                Directory.CreateDirectory(directory);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot create the folder {directory}: {e.Message}", e);
            }
            SetOwnerOnly(source);
            var destination = MoveToFreeName(source, directory, item.SafeName);
            try
            {
                var released = _database.Quarantine.MarkReleased(id, destination, manual);
                LogReleased(_logger, id, destination, manual);
                return released;
            }
            catch
            {
                // The record did not change, so the file goes back where the record says it is.
                File.Move(destination, source, overwrite: false);
                throw;
            }
        }
    }

    /// <summary>Moves into <paramref name="directory"/> under the first free name; the move itself refuses to overwrite, so a racing file is never replaced.</summary>
    private static string MoveToFreeName(string source, string directory, string name)
    {
        var extension = Path.GetExtension(name);
        var stem = name[..^extension.Length];
        for (var n = 0; n < MaxNameAttempts; n++)
        {
            var candidate = Path.Combine(directory, n == 0 ? name : $"{stem} ({Num(n)}){extension}");
            if (Occupied(candidate))
            {
                continue;
            }
            try
            {
                File.Move(source, candidate, overwrite: false);
                SetOwnerOnly(candidate);
                return candidate;
            }
            catch (IOException) when (Occupied(candidate))
            {
                // Taken between the look and the move: try the next name.
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot move the file into {directory}: {e.Message}", e);
            }
        }
        throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"no free name for {name} in {directory}");
    }

    /// <summary>True for any entry, including a dangling symbolic link.</summary>
    private static bool Occupied(string path)
    {
        var info = new FileInfo(path);
        return info.Exists || Directory.Exists(path) || info.LinkTarget is not null;
    }

    private void RemoveData(QuarantineRecord item)
    {
        foreach (var path in new[] { PartPath(item.Id), item.Path ?? ItemPath(item), ItemPath(item) }.Distinct(StringComparer.Ordinal))
        {
            // Only ever inside our folder, whatever the record says.
            if (Path.GetDirectoryName(Path.GetFullPath(path)) == Folder)
            {
                File.Delete(path);
            }
        }
    }

    private void ThrowIfBlocked(string contentId, string verb)
    {
        if (IsBlocked(contentId))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Unauthorized, $"content {contentId} is blocked; it is never {verb}");
        }
    }

    private void EnsureFolder()
    {
        var info = new DirectoryInfo(Folder);
        if (info.LinkTarget is not null)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"the quarantine folder {Folder} is a symbolic link; refusing to use it");
        }
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Folder);
            return;
        }
        Directory.CreateDirectory(Folder, OwnerOnly.Directories);
        if (File.GetUnixFileMode(Folder) != OwnerOnly.Directories)
        {
            File.SetUnixFileMode(Folder, OwnerOnly.Directories);
        }
    }

    private static void CreatePartFile(string path, bool truncate)
    {
        var options = new FileStreamOptions { Mode = truncate ? FileMode.Create : FileMode.OpenOrCreate, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly.Files;
        }
        using (new FileStream(path, options))
        {
        }
        SetOwnerOnly(path);
    }

    private static void SetOwnerOnly(string path)
    {
        if (!OperatingSystem.IsWindows() && File.GetUnixFileMode(path) != OwnerOnly.Files)
        {
            File.SetUnixFileMode(path, OwnerOnly.Files);
        }
    }

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Quarantine item {Id} held: {Reason}")]
    private static partial void LogHeld(ILogger logger, long id, string reason);

    [LoggerMessage(EventId = 702, Level = LogLevel.Information, Message = "Quarantine item {Id} released to {Path} (manual: {Manual})")]
    private static partial void LogReleased(ILogger logger, long id, string path, bool manual);

    [LoggerMessage(EventId = 703, Level = LogLevel.Information, Message = "Quarantine item {Id} deleted: {Why}")]
    private static partial void LogDeleted(ILogger logger, long id, string why);
}
