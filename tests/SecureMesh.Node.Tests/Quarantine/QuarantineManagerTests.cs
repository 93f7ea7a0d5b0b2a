using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Quarantine;

public sealed class QuarantineManagerTests : IDisposable
{
    internal const string Cid = "b3:abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst";
    internal const UnixFileMode OwnerRw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode AnyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;

    private readonly TempDir _dir = new();
    private readonly SecureMeshDatabase _db;
    private readonly string _home;
    private readonly string _downloads;
    private readonly PeerId _publisher;
    private readonly string _scanLog;

    public QuarantineManagerTests()
    {
        _home = _dir.Combine("home");
        _downloads = _dir.Combine("downloads");
        _db = SecureMeshDatabase.Open(_home);
        _db.Config.Set(NodeSettings.DownloadDir, _downloads);
        using var identity = NodeIdentity.Generate();
        _publisher = identity.PeerId;
        _db.Trust.AddPeer(_publisher, "alice", null, trusted: true);
        _scanLog = _dir.Combine("scanned");
    }

    public void Dispose()
    {
        _db.Dispose();
        _dir.Dispose();
    }

    private QuarantineManager Manager(string scannerBody = "exit 0") =>
        new(_db, _home, new ScannerRunner(_dir.Script("scanner", $"echo \"$1\" >> '{_scanLog}'\n{scannerBody}"), TimeSpan.FromSeconds(20)));

    private static QuarantineRecord Download(QuarantineManager manager, string name, byte[] data, PeerId? publisher, string cid = Cid)
    {
        var item = manager.BeginDownload(cid, name, data.Length, publisher, publisher is null ? null : [publisher]);
        using var part = manager.OpenPart(item.Id);
        // Chunks arrive out of order.
        var half = data.Length / 2;
        part.Position = half;
        part.Write(data, half, data.Length - half);
        part.Position = 0;
        part.Write(data, 0, half);
        return item;
    }

    private static Func<string, CancellationToken, Task<bool>> Matches(byte[] expected) =>
        async (path, ct) => (await File.ReadAllBytesAsync(path, ct)).AsSpan().SequenceEqual(expected);

    [Fact]
    public async Task A_clean_file_from_a_trusted_publisher_is_released_without_overwriting_and_not_executable()
    {
        var manager = Manager();
        Directory.CreateDirectory(_downloads);
        File.WriteAllText(Path.Combine(_downloads, "report.txt"), "the user's own file");
        var data = "quarterly numbers"u8.ToArray();

        var item = Download(manager, "../../report.txt", data, _publisher);
        Assert.Equal("report.txt", item.SafeName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(manager.Folder));
        Assert.Equal(OwnerRw, File.GetUnixFileMode(item.Path!));
        Assert.StartsWith(manager.Folder + "/", item.Path, StringComparison.Ordinal);
        Assert.Single(Directory.EnumerateFileSystemEntries(_downloads));

        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);

        Assert.True(outcome.Released, outcome.Item.Reason);
        Assert.Equal(QuarantineState.Released, outcome.Item.State);
        Assert.Equal(Path.Combine(_downloads, "report (1).txt"), outcome.Item.ReleasedPath);
        Assert.Equal("the user's own file", File.ReadAllText(Path.Combine(_downloads, "report.txt")));
        Assert.Equal(data, File.ReadAllBytes(outcome.Item.ReleasedPath!));
        Assert.Equal(OwnerRw, File.GetUnixFileMode(outcome.Item.ReleasedPath!));
        Assert.Empty(Directory.EnumerateFileSystemEntries(manager.Folder));
        // The scanner saw the file inside quarantine, never outside.
        Assert.StartsWith(manager.Folder + "/", File.ReadAllText(_scanLog).Trim(), StringComparison.Ordinal);
        var audit = _db.Audit.List()[^1];
        Assert.Equal("quarantine.released", audit.Event);
        Assert.Equal(_publisher.Text, audit.PeerId);
        Assert.Contains("mode=auto", audit.Detail, StringComparison.Ordinal);

        // A second copy of the same name takes the next free name.
        var again = Download(manager, "report.txt", data, _publisher);
        var second = await manager.CompleteAsync(again.Id, Matches(data), CancellationToken.None);
        Assert.Equal(Path.Combine(_downloads, "report (2).txt"), second.Item.ReleasedPath);
    }

    [Fact]
    public async Task A_flagged_file_is_held_owner_only_and_a_manual_release_is_audited_with_the_held_reason()
    {
        var manager = Manager("echo \"$1: Win.Test.EICAR_HDB-1 FOUND\"; exit 1");
        var data = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR"u8.ToArray();
        var item = Download(manager, "invoice.exe", data, _publisher);

        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);

        Assert.False(outcome.Released);
        Assert.Equal(QuarantineState.Held, outcome.Item.State);
        Assert.StartsWith("scanner 'scanner' flagged the file: ", outcome.Item.Reason, StringComparison.Ordinal);
        Assert.EndsWith("Win.Test.EICAR_HDB-1 FOUND", outcome.Item.Reason, StringComparison.Ordinal);
        var held = outcome.Item.Path!;
        // A name the node made: the scanner never sees the peer's name (issue 14, finding 5).
        Assert.Equal(Path.Combine(manager.Folder, $"{item.Id}.data"), held);
        Assert.Equal(OwnerRw, File.GetUnixFileMode(held));
        Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(held) & AnyExecute);
        Assert.False(Directory.Exists(_downloads) && Directory.EnumerateFileSystemEntries(_downloads).Any());
        Assert.Equal("quarantine.held", _db.Audit.List()[^1].Event);

        var target = _dir.Combine("elsewhere");
        var released = manager.Release(item.Id, target);
        Assert.Equal(Path.Combine(target, "invoice.exe"), released.ReleasedPath);
        Assert.False(File.Exists(held));
        Assert.Equal(data, File.ReadAllBytes(released.ReleasedPath!));
        Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(released.ReleasedPath!) & AnyExecute);
        var audit = _db.Audit.List()[^1];
        Assert.Equal("quarantine.released", audit.Event);
        Assert.Contains("mode=manual", audit.Detail, StringComparison.Ordinal);
        Assert.Contains("held_reason=\"scanner 'scanner' flagged the file:", audit.Detail, StringComparison.Ordinal);

        var twice = Assert.Throws<SecureMeshException>(() => manager.Release(item.Id));
        Assert.Equal(SecureMeshErrorKind.Conflict, twice.Kind);
        Assert.Contains("already released", twice.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_untrusted_publisher_holds_the_file_even_when_clean()
    {
        using var stranger = NodeIdentity.Generate();
        _db.Trust.RecordPending(stranger.PeerId, "192.0.2.9:4747");
        var manager = Manager();
        var data = "hello"u8.ToArray();
        var item = Download(manager, "hello.txt", data, stranger.PeerId);

        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);

        Assert.False(outcome.Released);
        Assert.Equal($"publisher {stranger.PeerId} is not trusted", outcome.Item.Reason);
        Assert.True(outcome.Item.Verified);

        var anonymous = Download(manager, "anon.txt", data, null, "b3:zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz");
        var second = await manager.CompleteAsync(anonymous.Id, Matches(data), CancellationToken.None);
        Assert.Equal("the publisher is unknown", second.Item.Reason);
    }

    [Fact]
    public async Task Every_failed_check_is_listed_and_a_file_that_does_not_verify_can_never_be_released()
    {
        using var stranger = NodeIdentity.Generate();
        var manager = Manager("exit 1");
        var item = Download(manager, "x.bin", "tampered"u8.ToArray(), stranger.PeerId);

        var outcome = await manager.CompleteAsync(item.Id, (_, _) => Task.FromResult(false), CancellationToken.None);

        Assert.Equal($"the file does not match its content ID {Cid}; publisher {stranger.PeerId} is not trusted", outcome.Item.Reason);
        Assert.False(outcome.Item.Verified);
        Assert.False(File.Exists(_scanLog), "unverified data must not even be scanned");
        var refused = Assert.Throws<SecureMeshException>(() => manager.Release(item.Id));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, refused.Kind);
        Assert.Contains("did not verify", refused.Message, StringComparison.Ordinal);

        var deleted = manager.Delete(item.Id);
        Assert.Equal(QuarantineState.Deleted, deleted.State);
        Assert.Empty(Directory.EnumerateFileSystemEntries(manager.Folder));
        Assert.Equal("quarantine.deleted", _db.Audit.List()[^1].Event);
        Assert.Equal(SecureMeshErrorKind.Conflict, Assert.Throws<SecureMeshException>(() => manager.Delete(item.Id)).Kind);
    }

    [Fact]
    public async Task Blocked_content_is_never_released_and_abort_removes_partial_data()
    {
        var manager = Manager();
        var data = "forbidden"u8.ToArray();
        var item = Download(manager, "f.txt", data, _publisher);
        _db.Trust.BlockContent(Cid, "malware report");
        Assert.True(manager.IsBlocked(Cid));

        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
        Assert.False(outcome.Released);
        Assert.Equal($"content {Cid} is blocked", outcome.Item.Reason);
        var refused = Assert.Throws<SecureMeshException>(() => manager.Release(item.Id, _downloads));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, refused.Kind);
        Assert.Contains("blocked", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_downloads));

        Assert.Equal(1, manager.AbortForBlockedContent(Cid));
        Assert.Empty(Directory.EnumerateFileSystemEntries(manager.Folder));
        Assert.Equal(QuarantineState.Deleted, manager.Get(item.Id).State);
        Assert.Equal(SecureMeshErrorKind.Unauthorized,
            Assert.Throws<SecureMeshException>(() => manager.BeginDownload(Cid, "f.txt", 9, _publisher, null)).Kind);
    }

    [Fact]
    public void A_block_mid_download_deletes_the_part_file()
    {
        var manager = Manager();
        var item = manager.BeginDownload(Cid, "big.iso", 1 << 20, _publisher, [_publisher]);
        using (var part = manager.OpenPart(item.Id))
        {
            part.Write(new byte[4096]);
        }
        Assert.True(File.Exists(item.Path));
        _db.Trust.BlockContent(Cid);

        Assert.Equal(1, manager.AbortForBlockedContent(Cid));

        Assert.False(File.Exists(item.Path));
        var after = manager.Get(item.Id);
        Assert.Equal(QuarantineState.Deleted, after.State);
        Assert.Contains("why=\"content blocked\"", _db.Audit.List()[^1].Detail, StringComparison.Ordinal);
        Assert.Equal(SecureMeshErrorKind.Conflict, Assert.Throws<SecureMeshException>(() => manager.OpenPart(item.Id)).Kind);
        Assert.Equal(0, manager.AbortForBlockedContent(Cid));
    }

    [Fact]
    public async Task Begin_download_resumes_the_same_item_and_a_short_file_is_held()
    {
        var manager = Manager();
        var first = manager.BeginDownload(Cid, "a.txt", 10, _publisher, null);
        var again = manager.BeginDownload(Cid, "other name", 10, _publisher, null);
        Assert.Equal(first.Id, again.Id);

        var outcome = await manager.CompleteAsync(first.Id, (_, _) => Task.FromResult(true), CancellationToken.None);
        Assert.Equal("the file is 0 bytes, expected 10", outcome.Item.Reason);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => manager.Get(4242)).Kind);
        Assert.Equal(SecureMeshErrorKind.NotFound, Assert.Throws<SecureMeshException>(() => manager.Release(4242)).Kind);
    }

    [Fact]
    public async Task A_timed_out_scanner_holds_the_file_with_the_limit_in_the_reason()
    {
        var manager = new QuarantineManager(_db, _home, new ScannerRunner(_dir.Script("slowscan", "sleep 60"), TimeSpan.FromSeconds(1)));
        var data = "zzz"u8.ToArray();
        var item = Download(manager, "z", data, _publisher);
        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
        Assert.Equal("scanner 'slowscan' timed out after 1 s", outcome.Item.Reason);
    }

    [Fact]
    public async Task An_unusable_download_folder_holds_the_file_instead_of_losing_it()
    {
        File.WriteAllText(_dir.Combine("not-a-folder"), "x");
        _db.Config.Set(NodeSettings.DownloadDir, _dir.Combine("not-a-folder"));
        var manager = Manager();
        var data = "ok"u8.ToArray();
        var item = Download(manager, "ok.txt", data, _publisher);
        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
        Assert.False(outcome.Released);
        Assert.StartsWith("automatic release failed: cannot create the folder", outcome.Item.Reason, StringComparison.Ordinal);
        Assert.True(File.Exists(outcome.Item.Path));

        // The user can still release it somewhere else.
        var released = manager.Release(item.Id, _dir.Combine("other"));
        Assert.Equal(data, File.ReadAllBytes(released.ReleasedPath!));
    }

    [Fact]
    public void Tilde_expands_to_the_home_folder()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        Assert.Equal(Path.Combine(home, "Downloads", "SecureMesh"), QuarantineManager.ExpandHome("~/Downloads/SecureMesh"));
        Assert.Equal(home, QuarantineManager.ExpandHome("~"));
        Assert.Equal("/srv/in", QuarantineManager.ExpandHome("/srv/in"));
    }

    [Fact]
    public async Task The_scanner_setting_is_read_from_config_when_none_is_given()
    {
        _db.Config.Set(NodeSettings.Scanner, $"'{_dir.Script("cfgscan", "echo 'cfg FOUND'; exit 1")}' --opt {{}}");
        var manager = new QuarantineManager(_db, _home);
        var data = "cfg"u8.ToArray();
        var item = Download(manager, "c.txt", data, _publisher);
        var outcome = await manager.CompleteAsync(item.Id, Matches(data), CancellationToken.None);
        Assert.Equal("scanner 'cfgscan' flagged the file: cfg FOUND", outcome.Item.Reason);
    }
}
