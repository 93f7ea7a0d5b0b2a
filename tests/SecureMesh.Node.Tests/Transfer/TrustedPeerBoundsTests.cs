using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node.Transfer;

namespace SecureMesh.Node.Tests.Transfer;

/// <summary>
/// Issue 14, finding 4: one manifest from a trusted peer cost the downloader gigabytes (67,108,863 chunks of 16 KiB,
/// exactly at the old cap), a 1 TiB sparse part file, and a download record that resumed on every restart. Each test
/// plays the trusted liar with a scripted seeder against a real node.
/// </summary>
public sealed class TrustedPeerBoundsTests
{
    [Theory]
    [InlineData(262_145L)] // one over the new cap (2^18 chunks)
    [InlineData(67_108_863L)] // exactly at the old cap: 1 TiB in 16 KiB chunks
    public async Task A_manifest_with_more_chunks_than_the_cap_is_refused_before_anything_is_allocated(long chunks)
    {
        await using var downloader = TransferNode.Start();
        using var publisher = NodeIdentity.Generate();
        var id = ContentId.FromHash(new byte[32]);
        var manifest = Manifest.Create(publisher, "huge.bin", chunks * TransferNode.ChunkSize, TransferNode.ChunkSize, id, DateTimeOffset.UtcNow).Encode();
        await using var liar = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
            HaveRequest h => HaveResponse.ForAll(h.RequestId, chunks),
            _ => new ErrorMessage(request.RequestId, WireErrorCode.NotFound, "no"),
        });

        var result = await downloader.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Failed, result.State);
        Assert.Contains("no peer gave a valid manifest", result.Reason, StringComparison.Ordinal);
        Assert.Contains($"claims {chunks} chunks, more than the 262144", result.Reason, StringComparison.Ordinal);
        Assert.Empty(downloader.Db.Quarantine.List());
        Assert.Empty(downloader.Db.Downloads.List());
        Assert.False(Directory.Exists(downloader.Transfer.Quarantine.Folder) && Directory.EnumerateFiles(downloader.Transfer.Quarantine.Folder).Any());
    }

    [Fact]
    public async Task A_manifest_larger_than_the_free_disk_is_refused_with_a_clear_reason_and_no_part_file_appears()
    {
        await using var downloader = TransferNode.Start();
        const int chunkSize = 16 * 1024 * 1024;
        var free = new DriveInfo(downloader.Home).AvailableFreeSpace;
        // 1 TiB, or more when this disk is that large: never a size that fits.
        var size = Math.Max(1L << 40, ((free / chunkSize) + 64) * chunkSize);
        var chunks = size / chunkSize;
        Assert.True(chunks <= 262_144, "this disk is too large for the test (over 4 TiB free)");
        using var publisher = NodeIdentity.Generate();
        var id = ContentId.FromHash(Enumerable.Repeat((byte)7, 32).ToArray());
        var manifest = Manifest.Create(publisher, "terabyte.bin", size, chunkSize, id, DateTimeOffset.UtcNow).Encode();
        await using var liar = await ScriptedSeeder.StartAsync(downloader, request => request switch
        {
            ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
            HaveRequest h => HaveResponse.ForAll(h.RequestId, chunks),
            _ => new ErrorMessage(request.RequestId, WireErrorCode.NotFound, "no"),
        });

        var result = await downloader.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Failed, result.State);
        Assert.Contains("not enough disk space for terabyte.bin", result.Reason, StringComparison.Ordinal);
        Assert.Null(result.QuarantineId);
        Assert.Empty(downloader.Db.Quarantine.List());
        Assert.Empty(downloader.Db.Downloads.List());
        var folder = downloader.Transfer.Quarantine.Folder;
        Assert.False(Directory.Exists(folder) && Directory.EnumerateFiles(folder).Any(), "a part file was created");
    }

    [Fact]
    public async Task A_refuted_download_leaves_no_part_file_or_record_and_nothing_resumes_after_a_restart()
    {
        var downloader = TransferNode.Start(TransferNode.Fast(o => o.BanAfter = 100));
        try
        {
            var data = new byte[3 * TransferNode.ChunkSize];
            new Random(9).NextBytes(data);
            var tree = MerkleTree.Build(Leaves(data), data.Length, TransferNode.ChunkSize);
            using var publisher = NodeIdentity.Generate();
            var manifest = Manifest.Create(publisher, tree, "x.bin", DateTimeOffset.UtcNow).Encode();
            await using (var liar = await ScriptedSeeder.StartAsync(downloader, request => request switch
            {
                ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
                HaveRequest h => HaveResponse.ForAll(h.RequestId, 3),
                // Wrong bytes under the real proof: every chunk fails verification.
                ChunkRequest c => new ChunkResponse(c.RequestId, c.Index, new byte[TransferNode.ChunkSize], tree.GetProof(c.Index)),
                _ => null,
            }))
            {
                var result = await downloader.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(DownloadState.Failed, result.State);
                var itemId = Assert.NotNull(result.QuarantineId);
                Assert.False(File.Exists(downloader.Transfer.Quarantine.PartPath(itemId)), "the part file of a refuted download was left behind");
                Assert.Equal(Storage.QuarantineState.Deleted, downloader.Db.Quarantine.Get(itemId)!.State);
                Assert.Empty(downloader.Db.Downloads.List());
            }

            await downloader.StopAsync();
            await using var restarted = TransferNode.Start(home: downloader.Home, identity: downloader.Identity);
            Assert.Empty(restarted.Transfer.ResumeDownloads());
            Assert.Empty(restarted.Transfer.ListTransfers());
        }
        finally
        {
            await downloader.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_failed_download_with_verified_chunks_keeps_them_for_get_but_never_resumes_by_itself()
    {
        var downloader = TransferNode.Start();
        try
        {
            var data = new byte[4 * TransferNode.ChunkSize];
            new Random(11).NextBytes(data);
            var tree = MerkleTree.Build(Leaves(data), data.Length, TransferNode.ChunkSize);
            using var publisher = NodeIdentity.Generate();
            var manifest = Manifest.Create(publisher, tree, "half.bin", DateTimeOffset.UtcNow).Encode();
            // Serves the first two chunks truly, then has nothing more.
            Func<WireMessage, WireMessage?> halfSeeder = request => request switch
            {
                ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
                HaveRequest h => HaveResponse.ForAll(h.RequestId, 4),
                ChunkRequest { Index: < 2 } c => new ChunkResponse(c.RequestId, c.Index,
                    data.AsMemory((int)c.Index * TransferNode.ChunkSize, TransferNode.ChunkSize), tree.GetProof(c.Index)),
                _ => new ErrorMessage(request.RequestId, WireErrorCode.NotFound, "gone"),
            };
            await using (var seeder = await ScriptedSeeder.StartAsync(downloader, halfSeeder))
            {
                var result = await downloader.Transfer.StartDownload(tree.ContentId).Completion.WaitAsync(TimeSpan.FromSeconds(30));
                Assert.Equal(DownloadState.Failed, result.State);
                Assert.True(File.Exists(downloader.Transfer.Quarantine.PartPath(result.QuarantineId!.Value)));
                Assert.Equal(2, downloader.Db.Downloads.VerifiedChunks(tree.ContentId.Text).Count);
            }

            await downloader.StopAsync();
            await using var restarted = TransferNode.Start(home: downloader.Home, identity: downloader.Identity);
            Assert.Empty(restarted.Transfer.ResumeDownloads());
            Assert.Single(restarted.Db.Downloads.List());

            // Asked again, with a peer that has it all, it resumes from the two verified chunks.
            var full = new Func<WireMessage, WireMessage?>(request => request switch
            {
                ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
                HaveRequest h => HaveResponse.ForAll(h.RequestId, 4),
                ChunkRequest c => new ChunkResponse(c.RequestId, c.Index,
                    data.AsMemory((int)c.Index * TransferNode.ChunkSize, TransferNode.ChunkSize), tree.GetProof(c.Index)),
                _ => null,
            });
            await using var honest = await ScriptedSeeder.StartAsync(restarted, full);
            var again = restarted.Transfer.StartDownload(tree.ContentId);
            var done = await again.Completion.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(done.State is DownloadState.Released or DownloadState.Held, done.Reason);
            Assert.Equal(2, again.ResumedChunks);
        }
        finally
        {
            await downloader.DisposeAsync();
        }
    }

    internal static byte[] Leaves(byte[] data)
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
