using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;
using SecureMesh.Core;
using SecureMesh.Core.Content;
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

    /// <summary>
    /// Tests: asked at each step of a release ("recorded", "copied", "named", "moved"); true stops the release there as a
    /// crash would (a <see cref="SimulatedCrash"/> that no cleanup catches).
    /// </summary>
    internal Func<string, bool>? CrashAt { get; set; }

    /// <summary>Tests: release by copying, as across file systems, even where a rename would do.</summary>
    internal bool ForceCopy { get; set; }

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
                // Within the quarantine folder, under a name the node made: the scanner never sees a peer's name.
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
    /// <remarks>
    /// A value set with <c>config set</c> was resolved then (no link is followed at release: one swapped in later is
    /// refused); the default, never set, is resolved here.
    /// </remarks>
    public string DownloadDirectory()
    {
        var configured = _database.Config.Get(NodeSettings.DownloadDir);
        return configured is null
            ? ShareFileSystem.Resolve(ExpandHome(NodeSettings.Get(NodeSettings.DownloadDir).Default))
            : ExpandHome(configured);
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

    /// <summary>Where a complete item lies in quarantine: <c>ID.data</c>, a name the node made (the peer's name is only used at release).</summary>
    internal string ItemPath(QuarantineRecord item) => Path.Combine(Folder, Num(item.Id) + ".data");

    /// <summary>The name a copy across file systems is written under in the destination folder before it takes its final name.</summary>
    internal static string TempName(long id) => $".securemesh-release-{Num(id)}.tmp";

    /// <summary>
    /// Settles releases a crash interrupted (the destination is recorded before the file moves): a file that reached its
    /// destination is marked released (a copy whose source still lies in quarantine is checked byte for byte first and
    /// the source removed); otherwise the record is cleared and the item stays where it was. A half-written copy is
    /// removed. Run at node start; returns how many items were marked released.
    /// </summary>
    public int ReconcileReleases()
    {
        var released = 0;
        lock (_gate)
        {
            foreach (var item in _database.Quarantine.ListReleasePending())
            {
                try
                {
                    released += ReconcileOne(item) ? 1 : 0;
                }
                catch (Exception e) when (e is SecureMeshException or IOException or UnauthorizedAccessException)
                {
                    LogReconcileFailed(_logger, item.Id, e.Message);
                }
            }
        }
        return released;
    }

    private bool ReconcileOne(QuarantineRecord item)
    {
        var destination = item.ReleasePending!;
        var directory = Path.GetDirectoryName(destination)!;
        var source = item.Path ?? ItemPath(item);
        var sourceThere = ShareFileSystem.Lstat(source) is { Kind: FileKind.Regular };
        var destinationThere = ShareFileSystem.Lstat(destination) is { Kind: FileKind.Regular };
        using (var target = TryOpenDirectory(directory))
        {
            if (target is not null)
            {
                // A copy cut short (or finished but not yet named): the source is still in quarantine.
                ShareFileSystem.Unlink(target, directory, TempName(item.Id));
            }
        }
        if (sourceThere && destinationThere && SameBytes(source, destination))
        {
            // Copied and named, but the quarantine copy was not removed yet.
            File.Delete(source);
            sourceThere = false;
        }
        if (!sourceThere && destinationThere)
        {
            _database.Quarantine.MarkReleased(item.Id, destination, item.ReleaseManual);
            // The download that led here is finished: it must not be resumed into a second item.
            if (_database.Downloads.Get(item.ContentId) is { } download && download.QuarantineId == item.Id)
            {
                _database.Downloads.Remove(item.ContentId);
            }
            LogReconciled(_logger, item.Id, destination);
            return true;
        }
        _database.Quarantine.SetReleasePending(item.Id, null, item.ReleaseManual);
        return false;
    }

    private static SafeFileHandle? TryOpenDirectory(string directory)
    {
        try
        {
            return ShareFileSystem.OpenDirectory(directory);
        }
        catch (SecureMeshException)
        {
            return null;
        }
    }

    private static SafeFileHandle OpenNoFollow(string path, out FileIdentity identity)
    {
        var directory = ShareFileSystem.Resolve(Path.GetDirectoryName(path)!);
        using var handle = ShareFileSystem.OpenDirectory(directory);
        return ShareFileSystem.OpenFileBeneath(handle, directory, Path.GetFileName(path), out identity);
    }

    private static bool SameBytes(string a, string b)
    {
        using var first = OpenNoFollow(a, out var one);
        using var second = OpenNoFollow(b, out var two);
        if (one.Size != two.Size)
        {
            return false;
        }
        var x = new byte[1 << 16];
        var y = new byte[1 << 16];
        for (long offset = 0; offset < one.Size;)
        {
            var n = RandomAccess.Read(first, x, offset);
            if (n == 0 || RandomAccess.Read(second, y.AsSpan(0, n), offset) != n || !x.AsSpan(0, n).SequenceEqual(y.AsSpan(0, n)))
            {
                return false;
            }
            offset += n;
        }
        return true;
    }

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
            if (ShareFileSystem.Lstat(source) is not { Kind: FileKind.Regular }
                || !string.Equals(Path.GetDirectoryName(source), Folder, StringComparison.Ordinal))
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage, $"the data of quarantine item {Num(id)} is missing from {Folder}");
            }
            // A folder given now (a manual release) is resolved now; the download-dir setting was resolved when it was
            // set, and a download's own folder when the download started: neither is resolved again, so a link swapped
            // in since is refused rather than followed.
            var directory = toDirectory is null ? DownloadDirectory()
                : manual ? ShareFileSystem.Resolve(ExpandHome(toDirectory)) : ExpandHome(toDirectory);
            using var target = OpenReleaseFolder(directory);
            // Our own folder: its path is resolved (a data directory under a linked home is fine), its files are not.
            using var quarantine = ShareFileSystem.OpenDirectory(ShareFileSystem.Resolve(Folder));
            SetOwnerOnly(source);
            var destination = Place(item, quarantine, Path.GetFileName(source), target, directory, manual);
            Step("moved");
            try
            {
                var released = _database.Quarantine.MarkReleased(id, destination, manual);
                LogReleased(_logger, id, destination, manual);
                return released;
            }
            catch (Exception e) when (e is not SimulatedCrash)
            {
                // The record did not change, so the file goes back where the record says it is.
                if (ShareFileSystem.RenameNoReplace(target, Path.GetFileName(destination), quarantine, Path.GetFileName(source)) == ShareFileSystem.RenameResult.Done)
                {
                    _database.Quarantine.SetReleasePending(id, null, manual);
                }
                throw;
            }
        }
    }

    /// <summary>
    /// Opens the release folder (creating it when missing) with no symbolic link at any component: a download folder
    /// swapped for a link after it was set is refused, and the item stays in quarantine with the reason.
    /// </summary>
    private static SafeFileHandle OpenReleaseFolder(string directory)
    {
        try
        {
            var existing = ShareFileSystem.Lstat(directory);
            if (existing is { Kind: not (FileKind.Directory or FileKind.SymbolicLink) } inTheWay)
            {
                throw new IOException($"{inTheWay.Describe()} of that name is in the way");
            }
            if (existing is null)
            {
                // Its parent must be reachable without a link before anything is created there.
                var parent = Path.GetDirectoryName(directory);
                if (parent is not null && ShareFileSystem.Lstat(parent) is not null)
                {
                    ShareFileSystem.OpenDirectory(parent).Dispose();
                }
                Directory.CreateDirectory(directory);
            }
            return ShareFileSystem.OpenDirectory(directory);
        }
        catch (SecureMeshException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"release refused, the file stays in quarantine: {e.Message} (the download folder is resolved when it is set; set it again to accept a new place)", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot create the folder {directory}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Puts the quarantined file into the release folder under the first free name, never replacing anything and never
    /// following a link: each attempt is recorded first, then made with <c>renameat2(RENAME_NOREPLACE)</c> between the
    /// two folder handles; across file systems it is copied to a temporary name created <c>O_EXCL</c>, flushed, then
    /// named the same way, and only then removed from quarantine.
    /// </summary>
    private string Place(QuarantineRecord item, SafeFileHandle quarantine, string sourceName, SafeFileHandle target, string directory, bool manual)
    {
        var name = item.SafeName;
        var extension = Path.GetExtension(name);
        var stem = name[..^extension.Length];
        string? temp = null;
        try
        {
            for (var n = 0; n < MaxNameAttempts; n++)
            {
                var candidate = n == 0 ? name : $"{stem} ({Num(n)}){extension}";
                var destination = Path.Combine(directory, candidate);
                if (ShareFileSystem.Lstat(destination) is not null)
                {
                    continue;
                }
                _database.Quarantine.SetReleasePending(item.Id, destination, manual);
                Step("recorded");
                if (temp is null)
                {
                    var moved = ForceCopy ? ShareFileSystem.RenameResult.Unsupported : ShareFileSystem.RenameNoReplace(quarantine, sourceName, target, candidate);
                    if (moved == ShareFileSystem.RenameResult.Done)
                    {
                        return destination;
                    }
                    if (moved == ShareFileSystem.RenameResult.Exists)
                    {
                        continue;
                    }
                    temp = TempName(item.Id);
                    CopyToTemp(quarantine, Folder, sourceName, target, directory, temp);
                    Step("copied");
                }
                if (NameTemp(target, directory, temp, candidate))
                {
                    Step("named");
                    ShareFileSystem.Unlink(quarantine, Folder, sourceName);
                    temp = null;
                    return destination;
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Abandon(item.Id, target, directory, temp, manual);
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot move the file into {directory}: {e.Message}", e);
        }
        catch (Exception e) when (e is not SimulatedCrash)
        {
            Abandon(item.Id, target, directory, temp, manual);
            throw;
        }
        Abandon(item.Id, target, directory, temp, manual);
        throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"no free name for {name} in {directory}");
    }

    private void Step(string step)
    {
        if (CrashAt?.Invoke(step) == true)
        {
            throw new SimulatedCrash(step);
        }
    }

    /// <summary>Tests: a release stopped as if the process had died at <see cref="Step"/>.</summary>
    internal sealed class SimulatedCrash(string step) : Exception($"simulated crash at '{step}'")
    {
        public string Step { get; } = step;
    }

    private void Abandon(long id, SafeFileHandle target, string directory, string? temp, bool manual)
    {
        try
        {
            if (temp is not null)
            {
                ShareFileSystem.Unlink(target, directory, temp);
            }
            _database.Quarantine.SetReleasePending(id, null, manual);
        }
        catch (Exception e) when (e is SecureMeshException or IOException)
        {
            // The next start settles it.
        }
    }

    private static void CopyToTemp(SafeFileHandle quarantine, string folder, string sourceName, SafeFileHandle target, string directory, string temp)
    {
        // A leftover of an earlier attempt is ours (the name holds the item's ID) and incomplete.
        ShareFileSystem.Unlink(target, directory, temp);
        using var input = ShareFileSystem.OpenFileBeneath(quarantine, folder, sourceName, out var info);
        using var output = ShareFileSystem.CreateExclusive(target, directory, temp);
        var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            for (long offset = 0; offset < info.Size;)
            {
                var read = RandomAccess.Read(input, buffer, offset);
                if (read == 0)
                {
                    throw new IOException("the quarantined file shrank while it was copied");
                }
                RandomAccess.Write(output, buffer.AsSpan(0, read), offset);
                offset += read;
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
        ShareFileSystem.Flush(output);
    }

    /// <summary>Gives the finished copy its final name without replacing anything; false when the name is taken.</summary>
    private static bool NameTemp(SafeFileHandle target, string directory, string temp, string candidate)
    {
        switch (ShareFileSystem.RenameNoReplace(target, temp, target, candidate))
        {
            case ShareFileSystem.RenameResult.Done:
                return true;
            case ShareFileSystem.RenameResult.Exists:
                return false;
            default:
                if (!ShareFileSystem.LinkNoReplace(target, directory, temp, candidate))
                {
                    return false;
                }
                ShareFileSystem.Unlink(target, directory, temp);
                return true;
        }
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

    [LoggerMessage(EventId = 704, Level = LogLevel.Warning, Message = "Quarantine item {Id}: a release cut short by a crash had finished; marked released to {Path}")]
    private static partial void LogReconciled(ILogger logger, long id, string path);

    [LoggerMessage(EventId = 705, Level = LogLevel.Warning, Message = "Quarantine item {Id}: settling an interrupted release failed: {Reason}")]
    private static partial void LogReconcileFailed(ILogger logger, long id, string reason);
}
