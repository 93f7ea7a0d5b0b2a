using System.Security.Cryptography;
using System.Text;
using SecureMesh.Core;
using SecureMesh.Core.Backup;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Backup;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Backup;

/// <summary>The "done when": real nodes on 127.0.0.1, real SQLite files, real sealed blobs on disk.</summary>
public sealed class BackupEndToEndTests : IAsyncLifetime
{
    private const string Marker = "PLAINTEXT-MARKER-5c1e9a";
    private readonly List<BackupNode> _nodes = [];
    private readonly List<string> _dirs = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes)
        {
            await node.DisposeAsync();
        }
        foreach (var dir in _dirs.Where(Directory.Exists))
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task<BackupNode> StartAsync(NodeIdentity? identity = null)
    {
        var node = await BackupNode.StartAsync(identity);
        _nodes.Add(node);
        return node;
    }

    private string TempDir()
    {
        var dir = Directory.CreateTempSubdirectory("securemesh-backup-data-").FullName;
        _dirs.Add(dir);
        return dir;
    }

    [Fact]
    public async Task A_folder_backed_up_to_two_holders_comes_back_from_the_key_alone_with_its_peers_and_versions()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var alice = await StartAsync();
        var bob = await StartAsync();
        var carol = await StartAsync();
        var dave = await StartAsync();
        alice.Trust(bob, "bob");
        alice.Trust(carol, "carol");
        alice.Trust(dave, "dave");
        alice.Db.Groups.Create("family");
        alice.Db.Groups.AddMembers("family", [dave.PeerId]);
        bob.Trust(alice);
        carol.Trust(alice);
        bob.Db.Backup.Offer(alice.PeerId, 64L << 20);
        carol.Db.Backup.Offer(alice.PeerId, 64L << 20);

        var folder = Path.Combine(TempDir(), "holiday-plans-folder");
        Directory.CreateDirectory(Path.Combine(folder, "inner-secret-dir"));
        var notes = Path.Combine(folder, "secret-notes-name.txt");
        await File.WriteAllTextAsync(notes, $"first version {Marker}", ct);
        var photo = RandomNumberGenerator.GetBytes((5 << 19) + 123); // 2.5 MiB and a bit: three chunks
        Encoding.ASCII.GetBytes(Marker).CopyTo(photo, 1_000_000);
        await File.WriteAllBytesAsync(Path.Combine(folder, "inner-secret-dir", "photo-name.bin"), photo, ct);
        await File.WriteAllBytesAsync(Path.Combine(folder, "empty-name.txt"), [], ct);

        alice.Db.Backup.AddSet(folder, [bob.PeerId, carol.PeerId], 2, "forever");
        var first = await alice.Host.Backup.RunAsync(null, ct);
        Assert.All(first, o => Assert.Null(o.Error));
        var status = Assert.Single(BackupStatusReport.Compute(alice.Db));
        Assert.All(status.Holders, h => Assert.Equal("complete", h.State));
        Assert.False(status.UnderReplicated);
        // The outbox is emptied once every holder has everything.
        Assert.Empty(Directory.EnumerateFiles(alice.Host.Backup.Outbox));

        var beforeChange = DateTimeOffset.UtcNow;
        await Task.Delay(20, ct);
        await File.WriteAllTextAsync(notes, $"second version, longer {Marker}", ct);
        File.SetLastWriteTimeUtc(notes, DateTime.UtcNow.AddMinutes(1));
        var second = await alice.Host.Backup.RunAsync(null, ct);
        Assert.All(second, o => Assert.Null(o.Error));
        Assert.Equal(2, BackupStatusReport.Versions(alice.Db, notes).Count);

        // The holder holds nothing readable: no marker, no file or folder name, in any file of its data directory.
        foreach (var file in Directory.EnumerateFiles(bob.Home, "*", SearchOption.AllDirectories))
        {
            var bytes = await File.ReadAllBytesAsync(file, ct);
            var text = Encoding.Latin1.GetString(bytes);
            foreach (var secret in new[] { Marker, "secret-notes-name", "photo-name", "inner-secret-dir", "holiday-plans-folder", "empty-name" })
            {
                Assert.DoesNotContain(secret, text, StringComparison.Ordinal);
            }
            Assert.DoesNotContain(Marker, Encoding.Unicode.GetString(bytes), StringComparison.Ordinal);
        }

        // A blob corrupted at the holder is caught by the next proof round, audited, and uploaded again.
        var held = Path.Combine(bob.Home, "backup-held", alice.PeerId.Text);
        var victim = Directory.EnumerateFiles(held).First(f => Path.GetFileName(f) != "root");
        var damaged = await File.ReadAllBytesAsync(victim, ct);
        damaged[damaged.Length / 2] ^= 0x55;
        await File.WriteAllBytesAsync(victim, damaged, ct);
        var proofs = await alice.Host.Backup.ProveAsync(ct);
        Assert.NotNull(proofs.Single(p => p.Holder.Equals(bob.PeerId)).Error);
        Assert.Null(proofs.Single(p => p.Holder.Equals(carol.PeerId)).Error);
        Assert.Contains(alice.Db.Audit.List(), e => e.Event == "backup.proof-failed" && e.PeerId == bob.PeerId.Text);
        Assert.Equal("failing", BackupStatusReport.Compute(alice.Db).Single().Holders.Single(h => h.PeerId == bob.PeerId.Text).State);
        Assert.True(BlobId.Parse(Path.GetFileName(victim)).Matches(await File.ReadAllBytesAsync(victim, ct)), "the lost blob was not uploaded again");
        var clean = await alice.Host.Backup.ProveAsync(ct);
        Assert.All(clean, o => Assert.Null(o.Error));
        Assert.All(BackupStatusReport.Compute(alice.Db).Single().Holders, h => Assert.Equal("complete", h.State));

        // The owner's disk dies: only the identity's seed survives.
        var seed = new byte[32];
        alice.Identity.ExportSeed(seed);
        var alicePeer = alice.PeerId;
        await alice.StopAsync(deleteHome: true);
        var restored = await StartAsync(NodeIdentity.FromSeed(seed));
        Assert.Equal(alicePeer, restored.PeerId);
        Assert.Empty(restored.Db.Trust.ListPeers());

        var target = TempDir();
        var lines = new List<string>();
        var result = await BackupRestore.RestoreAsync(restored.Host, [new RestoreSource(bob.PeerId, bob.Address)], target, null, lines.Add, ct);
        Assert.Empty(result.Problems);
        Assert.Equal(3, result.Files);
        var back = Path.Combine(target, "holiday-plans-folder");
        Assert.Equal($"second version, longer {Marker}", await File.ReadAllTextAsync(Path.Combine(back, "secret-notes-name.txt"), ct));
        Assert.Equal(photo, await File.ReadAllBytesAsync(Path.Combine(back, "inner-secret-dir", "photo-name.bin"), ct));
        Assert.Empty(await File.ReadAllBytesAsync(Path.Combine(back, "empty-name.txt"), ct));
        Assert.NotEmpty(lines);
        // Who Alice trusted comes back, with names and groups.
        Assert.Equal(PeerState.Trusted, restored.Db.Trust.GetPeer(carol.PeerId)?.State);
        Assert.Equal("dave", restored.Db.Trust.GetPeer(dave.PeerId)?.Name);
        Assert.Equal([dave.PeerId], restored.Db.Groups.Get("family")?.Members);
        Assert.Contains(restored.Db.Audit.List(), e => e.Event == "backup.restore");

        // Run again into the same folder: everything is already there, nothing is rewritten.
        var again = await BackupRestore.RestoreAsync(restored.Host, [new RestoreSource(bob.PeerId, bob.Address)], target, null, _ => { }, ct);
        Assert.Equal(0, again.Files);
        Assert.Equal(3, again.AlreadyThere);

        // A version from before the change.
        var older = TempDir();
        await BackupRestore.RestoreAsync(restored.Host, [new RestoreSource(bob.PeerId, bob.Address)], older, beforeChange, _ => { }, ct);
        Assert.Equal($"first version {Marker}", await File.ReadAllTextAsync(Path.Combine(older, "holiday-plans-folder", "secret-notes-name.txt"), ct));

        // Bob is gone: Carol alone gives everything back.
        await bob.StopAsync(deleteHome: true);
        var fromCarol = TempDir();
        var carolResult = await BackupRestore.RestoreAsync(restored.Host, [new RestoreSource(carol.PeerId, carol.Address)], fromCarol, null, _ => { }, ct);
        Assert.Empty(carolResult.Problems);
        Assert.Equal(photo, await File.ReadAllBytesAsync(Path.Combine(fromCarol, "holiday-plans-folder", "inner-secret-dir", "photo-name.bin"), ct));
    }

    [Fact]
    public async Task A_holder_refuses_data_past_the_quota_and_peers_without_an_offer()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var alice = await StartAsync();
        var bob = await StartAsync();
        alice.Trust(bob, "bob");
        bob.Trust(alice);
        bob.Db.Backup.Offer(alice.PeerId, 40_000);
        var folder = TempDir();
        await File.WriteAllBytesAsync(Path.Combine(folder, "small.bin"), RandomNumberGenerator.GetBytes(1000), ct);
        await File.WriteAllBytesAsync(Path.Combine(folder, "large.bin"), RandomNumberGenerator.GetBytes(300_000), ct);
        alice.Db.Backup.AddSet(folder, [bob.PeerId], 1, "staggered");
        var outcome = Assert.Single(await alice.Host.Backup.RunAsync(null, ct));
        Assert.Contains("quota", outcome.Error, StringComparison.Ordinal);
        Assert.True(bob.Db.Backup.Used(alice.PeerId) <= 40_000);
        var heldFolder = Path.Combine(bob.Home, "backup-held", alice.PeerId.Text);
        var heldBytes = Directory.Exists(heldFolder) ? Directory.EnumerateFiles(heldFolder).Sum(f => new FileInfo(f).Length) : 0;
        Assert.True(heldBytes <= 40_000, $"{heldBytes} bytes held past a 40,000-byte quota");
        Assert.Equal("failing", Assert.Single(Assert.Single(BackupStatusReport.Compute(alice.Db)).Holders).State);

        // A trusted peer without an offer: the protocol is not even offered to it.
        var carol = await StartAsync();
        carol.Trust(bob, "bob");
        bob.Trust(carol);
        var session = await carol.Host.Node.ConnectAsync(bob.PeerId, bob.Address, ct);
        var refused = await Assert.ThrowsAsync<SecureMeshException>(() => BackupConnection.OpenAsync(session, ct));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, refused.Kind);

        // A stranger Bob never trusted gets no session at all, so no stream either.
        var stranger = await StartAsync();
        stranger.Trust(bob, "bob");
        await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            var s = await stranger.Host.Node.ConnectAsync(bob.PeerId, bob.Address, ct);
            await using var c = await BackupConnection.OpenAsync(s, ct);
            await c.UsageAsync(ct);
        });
        Assert.Empty(Directory.Exists(Path.Combine(bob.Home, "backup-held", stranger.PeerId.Text))
            ? Directory.EnumerateFiles(Path.Combine(bob.Home, "backup-held", stranger.PeerId.Text)) : []);

        // A revoked offer applies to the very next request on an open stream; what was held is deleted.
        var aliceSession = alice.Host.Node.GetSession(bob.PeerId) ?? await alice.Host.Node.ConnectAsync(bob.PeerId, bob.Address, ct);
        await using var open = await BackupConnection.OpenAsync(aliceSession, ct);
        Assert.Equal(40_000, (await open.UsageAsync(ct)).Quota);
        Assert.True(bob.Host.Backup.Revoke(alice.PeerId));
        var revoked = await Assert.ThrowsAsync<SecureMeshException>(() => open.UsageAsync(ct));
        Assert.Equal(SecureMeshErrorKind.Unauthorized, revoked.Kind);
        Assert.False(Directory.Exists(Path.Combine(bob.Home, "backup-held", alice.PeerId.Text)));
        Assert.Contains(bob.Db.Audit.List(), e => e.Event == "backup.revoke" && e.PeerId == alice.PeerId.Text);
    }

    [Fact]
    public async Task A_holder_that_hands_back_an_older_catalog_is_outvoted_by_the_newest()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        var ct = timeout.Token;
        var alice = await StartAsync();
        var bob = await StartAsync();
        var carol = await StartAsync();
        foreach (var holder in new[] { bob, carol })
        {
            alice.Trust(holder);
            holder.Trust(alice);
            holder.Db.Backup.Offer(alice.PeerId, 16L << 20);
        }
        var folder = TempDir();
        var file = Path.Combine(folder, "ledger.txt");
        await File.WriteAllTextAsync(file, "old balance", ct);
        alice.Db.Backup.AddSet(folder, [bob.PeerId, carol.PeerId], 2, "forever");
        Assert.All(await alice.Host.Backup.RunAsync(null, ct), o => Assert.Null(o.Error));
        var bobRoot = Path.Combine(bob.Home, "backup-held", alice.PeerId.Text, "root");
        var oldRoot = await File.ReadAllBytesAsync(bobRoot, ct);
        await File.WriteAllTextAsync(file, "new balance", ct);
        File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(1));
        Assert.All(await alice.Host.Backup.RunAsync(null, ct), o => Assert.Null(o.Error));
        // Bob rolls back to the catalog before the change.
        await File.WriteAllBytesAsync(bobRoot, oldRoot, ct);

        var target = TempDir();
        var result = await BackupRestore.RestoreAsync(alice.Host, [new RestoreSource(bob.PeerId, bob.Address), new RestoreSource(carol.PeerId, carol.Address)],
            target, null, _ => { }, ct);
        Assert.Equal(alice.Db.Backup.GetHolder(carol.PeerId).RootSequence, result.CatalogSequence);
        Assert.Equal("new balance", await File.ReadAllTextAsync(Path.Combine(target, Path.GetFileName(folder), "ledger.txt"), ct));
    }

    [Theory]
    [InlineData("../escape.txt")]
    [InlineData("a/../../escape.txt")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("a/./b")]
    [InlineData("a\\..\\b")]
    public void A_catalog_path_that_leaves_its_folder_is_refused(string path)
    {
        var file = new CatalogFile { Set = "/home/alice/docs", Path = path };
        var e = Assert.Throws<SecureMeshException>(() => BackupRestore.TargetPath(file, "/tmp/restore"));
        Assert.Equal(SecureMeshErrorKind.Protocol, e.Kind);
        Assert.Equal("/tmp/restore/docs/a/b.txt", BackupRestore.TargetPath(new CatalogFile { Set = "/home/alice/docs", Path = "a/b.txt" }, "/tmp/restore"));
        Assert.Equal("/home/alice/docs/a/b.txt", BackupRestore.TargetPath(new CatalogFile { Set = "/home/alice/docs", Path = "a/b.txt" }, null));
    }
}
