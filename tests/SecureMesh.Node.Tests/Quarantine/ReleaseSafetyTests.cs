using SecureMesh.Core.Identity;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Quarantine;

/// <summary>
/// Issue 14, finding 6 and the crash left open in finding 11: a release never goes through a link swapped in for the
/// download folder, and a release cut short by a crash at any step ends, after the next start, with the file in
/// exactly one place and the record saying where.
/// </summary>
public sealed class ReleaseSafetyTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly SecureMeshDatabase _db;
    private readonly string _home;
    private readonly string _downloads;
    private readonly PeerId _publisher;

    public ReleaseSafetyTests()
    {
        _home = _dir.Combine("home");
        _downloads = _dir.Combine("downloads");
        _db = SecureMeshDatabase.Open(_home);
        _db.Config.Set(NodeSettings.DownloadDir, NodeSettings.Get(NodeSettings.DownloadDir).Normalize(_downloads));
        using var identity = NodeIdentity.Generate();
        _publisher = identity.PeerId;
        _db.Trust.AddPeer(_publisher, "alice", null, trusted: true);
    }

    public void Dispose()
    {
        _db.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void Setting_a_download_folder_that_is_a_link_stores_the_folder_it_names()
    {
        var real = Directory.CreateDirectory(_dir.Combine("real")).FullName;
        var link = _dir.Combine("link");
        Directory.CreateSymbolicLink(link, real);
        Assert.Equal(real, NodeSettings.Get(NodeSettings.DownloadDir).Normalize(link));
        Assert.Equal(Path.Combine(real, "not", "yet"), NodeSettings.Get(NodeSettings.DownloadDir).Normalize(Path.Combine(link, "not", "yet")));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_download_folder_swapped_for_a_link_after_it_was_set_is_refused_and_the_file_stays(bool copy)
    {
        var ssh = Directory.CreateDirectory(_dir.Combine("dot-ssh")).FullName;
        Directory.CreateDirectory(_downloads);
        var manager = Manager();
        manager.ForceCopy = copy;
        var data = "ssh-ed25519 AAAA attacker"u8.ToArray();
        var item = Download(manager, "authorized_keys", data);
        Directory.Delete(_downloads);
        Directory.CreateSymbolicLink(_downloads, ssh);

        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
        Assert.False(outcome.Released);
        Assert.Equal(QuarantineState.Held, outcome.Item.State);
        Assert.Contains("symbolic link", outcome.Item.Reason, StringComparison.Ordinal);
        Assert.Contains("stays in quarantine", outcome.Item.Reason, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(ssh));
        Assert.Equal(data, File.ReadAllBytes(outcome.Item.Path!));

        // A manual release is refused the same way; a parent swapped for a link is refused too.
        var e = Assert.Throws<SecureMesh.Core.SecureMeshException>(() => manager.Release(item.Id));
        Assert.Contains("symbolic link", e.Message, StringComparison.Ordinal);
        Directory.Delete(_downloads);
        var parentLink = _dir.Combine("parent");
        Directory.CreateSymbolicLink(parentLink, _dir.Path);
        _db.Config.Set(NodeSettings.DownloadDir, Path.Combine(parentLink, "dot-ssh"));
        Assert.Throws<SecureMesh.Core.SecureMeshException>(() => manager.Release(item.Id));
        Assert.Empty(Directory.GetFileSystemEntries(ssh));

        // Set again (resolved), the release goes where the setting now says.
        _db.Config.Set(NodeSettings.DownloadDir, NodeSettings.Get(NodeSettings.DownloadDir).Normalize(_downloads));
        var released = manager.Release(item.Id);
        Assert.Equal(Path.Combine(_downloads, "authorized_keys"), released.ReleasedPath);
        Assert.Equal(data, File.ReadAllBytes(released.ReleasedPath!));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_dangling_link_with_the_files_name_is_never_written_through(bool copy)
    {
        Directory.CreateDirectory(_downloads);
        var target = _dir.Combine("elsewhere");
        File.CreateSymbolicLink(Path.Combine(_downloads, "notes.txt"), target);
        var manager = Manager();
        manager.ForceCopy = copy;
        var data = "notes"u8.ToArray();
        var outcome = await manager.CompleteAsync(Download(manager, "notes.txt", data).Id, Matches(data), CancellationToken.None);
        Assert.True(outcome.Released, outcome.Item.Reason);
        Assert.Equal(Path.Combine(_downloads, "notes (1).txt"), outcome.Item.ReleasedPath);
        Assert.False(File.Exists(target));
        Assert.Null(outcome.Item.ReleasePending);
        Assert.Empty(Directory.GetFiles(_downloads, ".securemesh-release-*"));
    }

    [Theory]
    // rename: crash after recording, or after the move (before the database knew)
    [InlineData(false, "recorded", false)]
    [InlineData(false, "moved", true)]
    // copy (across file systems): after recording, mid-way (copy written, not named), named but source not removed, all done
    [InlineData(true, "recorded", false)]
    [InlineData(true, "copied", false)]
    [InlineData(true, "named", true)]
    [InlineData(true, "moved", true)]
    public async Task A_crash_at_any_step_of_a_release_ends_consistent_after_restart(bool copy, string step, bool expectReleased)
    {
        var manager = Manager();
        manager.ForceCopy = copy;
        manager.CrashAt = s => s == step;
        var data = new byte[300_000];
        new Random(5).NextBytes(data);
        var item = Download(manager, "photo.jpg", data);
        // The download's own record, as the transfer engine keeps it until completion returns.
        _db.Downloads.Begin(QuarantineManagerTests.Cid, "photo.jpg", data.Length, 16384, new byte[] { 1 }, item.Id, null);
        await Assert.ThrowsAsync<QuarantineManager.SimulatedCrash>(() => manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None));
        Assert.NotNull(_db.Quarantine.Get(item.Id)!.ReleasePending);

        // The next start.
        var restarted = Manager();
        restarted.ReconcileReleases();
        var after = _db.Quarantine.Get(item.Id)!;
        Assert.Null(after.ReleasePending);
        var inDownloads = Directory.Exists(_downloads) ? Directory.GetFileSystemEntries(_downloads) : [];
        var inQuarantine = Directory.GetFiles(restarted.Folder);
        if (expectReleased)
        {
            Assert.Equal(QuarantineState.Released, after.State);
            Assert.Equal(Path.Combine(_downloads, "photo.jpg"), after.ReleasedPath);
            Assert.Equal([after.ReleasedPath!], inDownloads);
            Assert.Equal(data, File.ReadAllBytes(after.ReleasedPath!));
            Assert.Empty(inQuarantine);
            // Finished: never resumed into a second item.
            Assert.Null(_db.Downloads.Get(QuarantineManagerTests.Cid));
        }
        else
        {
            // Not released: the file is where the record says, whole, and nothing half-made is left in the folder.
            Assert.Equal(QuarantineState.Verifying, after.State);
            Assert.Empty(inDownloads);
            Assert.Equal(data, File.ReadAllBytes(after.Path!));
            // Completing again (as the node does for a verifying item) releases it once.
            restarted.CrashAt = null;
            var outcome = await restarted.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
            Assert.True(outcome.Released, outcome.Item.Reason);
            Assert.Equal([Path.Combine(_downloads, "photo.jpg")], Directory.GetFileSystemEntries(_downloads));
        }
        // Nothing more to settle.
        Assert.Equal(0, restarted.ReconcileReleases());
    }

    [Fact]
    public async Task A_manual_release_cut_short_after_the_move_is_recorded_as_manual_at_restart()
    {
        var manager = Manager("exit 1");
        var data = "held data"u8.ToArray();
        var item = Download(manager, "held.bin", data);
        var held = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
        Assert.False(held.Released);
        manager.CrashAt = s => s == "moved";
        Assert.Throws<QuarantineManager.SimulatedCrash>(() => manager.Release(item.Id));
        Assert.Equal(1, Manager().ReconcileReleases());
        var after = _db.Quarantine.Get(item.Id)!;
        Assert.Equal(QuarantineState.Released, after.State);
        Assert.Contains(_db.Audit.List(), e => e.Event == "quarantine.released" && e.Detail.Contains("mode=manual", StringComparison.Ordinal));
    }

    private QuarantineManager Manager(string scannerBody = "exit 0") =>
        new(_db, _home, new ScannerRunner(_dir.Script("scanner", scannerBody), TimeSpan.FromSeconds(20)));

    private QuarantineRecord Download(QuarantineManager manager, string name, byte[] data)
    {
        var item = manager.BeginDownload(QuarantineManagerTests.Cid, name, data.Length, _publisher, [_publisher]);
        using var part = manager.OpenPart(item.Id);
        part.Write(data);
        return item;
    }

    private static Func<string, CancellationToken, Task<bool>> Matches(byte[] expected) =>
        async (path, ct) => (await File.ReadAllBytesAsync(path, ct)).AsSpan().SequenceEqual(expected);
}
