using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>Names and blocks as a real downloading node meets them: hostile names from a trusted peer, blocked content.</summary>
public sealed class HostileNameTests
{
    [Theory]
    [InlineData("../../../etc/cron.d/evil", "evil")]
    [InlineData("report\u202Etxt.exe", "report")]
    [InlineData("bell\u0007and\u001b[2Jescape.txt", "bell")]
    [InlineData("/abs/path/passwd", "passwd")]
    [InlineData("CON.txt", null)]
    public async Task A_hostile_announced_name_is_released_under_a_safe_name_inside_the_download_folder(string announced, string? expectedStart)
    {
        await using var downloader = TransferNode.Start();
        var data = new byte[3 * TransferNode.ChunkSize];
        new Random(21).NextBytes(data);
        var tree = MerkleTree.Build(Leaves(data), data.Length, TransferNode.ChunkSize);
        ScriptedSeeder? seeder = null;
        byte[]? manifest = null;
        seeder = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, manifest!),
            HaveRequest h => HaveResponse.ForAll(h.RequestId, 3),
            ChunkRequest c => new ChunkResponse(c.RequestId, c.Index,
                data.AsMemory((int)c.Index * TransferNode.ChunkSize, TransferNode.ChunkSize), tree.GetProof((int)c.Index)),
            _ => null,
        });
        await using (seeder)
        {
            // The trusted seeder itself publishes the hostile name, so the release policy would let it through.
            manifest = Manifest.Create(seeder.Identity, tree, announced, DateTimeOffset.UtcNow).Encode();

            var result = await downloader.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.True(result.State == DownloadState.Released, result.Reason);
            var released = new FileInfo(result.Path!);
            Assert.Equal(Path.GetFullPath(downloader.Downloads), released.DirectoryName);
            Assert.Equal(data, File.ReadAllBytes(released.FullName));
            var name = released.Name;
            Assert.DoesNotContain("..", name, StringComparison.Ordinal);
            Assert.DoesNotContain('/', name);
            Assert.DoesNotContain(name, c => char.IsControl(c) || c is >= '\u202A' and <= '\u202E' or >= '\u2066' and <= '\u2069');
            Assert.NotEqual("CON.txt", name, StringComparer.OrdinalIgnoreCase);
            if (expectedStart is not null)
            {
                Assert.Contains(expectedStart, name, StringComparison.Ordinal);
            }
            Assert.Equal((UnixFileMode)0, File.GetUnixFileMode(released.FullName) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute));
            var item = downloader.Db.Quarantine.Get(result.QuarantineId!.Value)!;
            Assert.Equal(announced, item.AnnouncedName);
        }
    }

    [Fact]
    public async Task Blocked_content_is_never_requested_and_nothing_of_it_reaches_the_disk()
    {
        await using var downloader = TransferNode.Start();
        var data = new byte[4 * TransferNode.ChunkSize];
        new Random(22).NextBytes(data);
        var tree = MerkleTree.Build(Leaves(data), data.Length, TransferNode.ChunkSize);
        var requests = 0;
        byte[]? manifest = null;
        await using var seeder = await ScriptedSeeder.StartAsync(downloader, request =>
        {
            Interlocked.Increment(ref requests);
            return request switch
            {
                ManifestRequest m => new ManifestResponse(m.RequestId, manifest!),
                HaveRequest h => HaveResponse.ForAll(h.RequestId, 4),
                ChunkRequest c => new ChunkResponse(c.RequestId, c.Index,
                    data.AsMemory((int)c.Index * TransferNode.ChunkSize, TransferNode.ChunkSize), tree.GetProof((int)c.Index)),
                _ => null,
            };
        });
        manifest = Manifest.Create(seeder.Identity, tree, "blocked.bin", DateTimeOffset.UtcNow).Encode();
        downloader.Db.Trust.BlockContent(tree.ContentId.Text, "known bad");
        var filesBefore = Files(downloader.Home);

        var result = await downloader.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(DownloadState.Failed, result.State);
        Assert.Contains("blocked", result.Reason, StringComparison.Ordinal);
        await Task.Delay(200);
        Assert.Equal(0, Volatile.Read(ref requests));
        Assert.Empty(downloader.Db.Quarantine.List());
        Assert.False(Directory.Exists(downloader.Downloads) && Directory.EnumerateFileSystemEntries(downloader.Downloads).Any());
        var quarantine = Path.Combine(downloader.Home, "quarantine");
        Assert.False(Directory.Exists(quarantine) && Directory.EnumerateFileSystemEntries(quarantine).Any());
        // No new file anywhere in the data directory (the database's own journal files aside).
        Assert.Empty(Files(downloader.Home).Except(filesBefore));
    }

    private static HashSet<string> Files(string home) =>
        [.. Directory.EnumerateFiles(home, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith("-wal", StringComparison.Ordinal) && !f.EndsWith("-shm", StringComparison.Ordinal) && !f.EndsWith("-journal", StringComparison.Ordinal))];

    private static byte[] Leaves(byte[] data)
    {
        var count = data.Length / TransferNode.ChunkSize;
        var leaves = new byte[count * 32];
        for (var i = 0; i < count; i++)
        {
            Blake3.Hasher.Hash(data.AsSpan(i * TransferNode.ChunkSize, TransferNode.ChunkSize), leaves.AsSpan(i * 32, 32));
        }
        return leaves;
    }
}
