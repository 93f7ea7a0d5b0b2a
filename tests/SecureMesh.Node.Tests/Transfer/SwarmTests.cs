using System.Collections.Concurrent;
using SecureMesh.Node.Transfer;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Transfer;

public sealed class SwarmTests
{
    [Fact]
    public async Task Swarm_with_a_changed_copy_a_liar_and_a_killed_seeder_still_releases_the_exact_file()
    {
        const int Size = 64 * TransferNode.ChunkSize;
        var killedServed = 0;
        await using var honest = TransferNode.Start(TransferNode.Fast(o => o.UploadLimit = 400 * 1024));
        await using var changed = TransferNode.Start();
        await using var liar = TransferNode.Start(TransferNode.Fast(o => o.Tamper = (_, data) => data[0] ^= 0xFF));
        var killed = TransferNode.Start(TransferNode.Fast(o =>
        {
            o.UploadLimit = 200 * 1024;
            o.Served = (_, _, _) => Interlocked.Increment(ref killedServed);
        }));
        await using var downloader = TransferNode.Start(TransferNode.Fast(o => o.BanAfter = 1));
        try
        {
            var original = honest.WriteFile("data.bin", Size, seed: 7);
            var id = await honest.ShareAsync(original);
            foreach (var seeder in new[] { changed, liar, killed })
            {
                var copy = seeder.WriteFile("data.bin", Size, seed: 7);
                Assert.Equal(id, await seeder.ShareAsync(copy));
            }
            // The changed seeder's copy is altered after indexing with size and modification time kept, so only the
            // seeder's own check of each chunk against its index can catch it.
            var changedPath = Path.Combine(changed.Home, "shared", "data.bin");
            var mtime = File.GetLastWriteTimeUtc(changedPath);
            await using (var f = new FileStream(changedPath, FileMode.Open, FileAccess.ReadWrite))
            {
                var bytes = new byte[Size];
                f.ReadExactly(bytes);
                for (var i = 0; i < Size; i += 4096)
                {
                    bytes[i] ^= 0x55;
                }
                f.Position = 0;
                f.Write(bytes);
            }
            File.SetLastWriteTimeUtc(changedPath, mtime);

            foreach (var seeder in new[] { honest, changed, liar, killed })
            {
                await downloader.ConnectAsync(seeder);
            }
            var handle = downloader.Transfer.StartDownload(id);
            await Wait.UntilAsync(() => Volatile.Read(ref killedServed) >= 2 || handle.Completion.IsCompleted, TimeSpan.FromSeconds(20), "the killed seeder to serve");
            Assert.False(handle.Completion.IsCompleted, "the seeder should die mid-download");
            await killed.StopAsync();

            var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(40));
            Assert.True(result.State == DownloadState.Released, result.Reason);
            Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(result.Path!));

            var log = downloader.Db.Audit.List();
            // Every rejected chunk came from the liar (the ones it had in flight when dropped are rejected too).
            var rejections = log.Where(e => e.Event == "chunk.rejected").ToList();
            Assert.NotEmpty(rejections);
            Assert.All(rejections, e => Assert.Equal(liar.PeerId.Text, e.PeerId));
            var rejected = rejections[0];
            Assert.Contains($"content={id}", rejected.Detail, StringComparison.Ordinal);
            Assert.Contains("expected root", rejected.Detail, StringComparison.Ordinal);
            Assert.Contains(log, e => e.Event == "peer.banned" && e.PeerId == liar.PeerId.Text);
            Assert.Equal(PeerState.Blocked, downloader.Db.Trust.GetPeer(liar.PeerId)!.State);
            // The changed copy was caught by its own seeder: never sent, so never rejected here.
            Assert.DoesNotContain(log, e => e.Event == "chunk.rejected" && e.PeerId == changed.PeerId.Text);
            await changed.Transfer.Shares.WhenIdleAsync();
            Assert.NotEqual(id.Text, changed.Db.Catalog.Get(changedPath)!.ContentId);
        }
        finally
        {
            await killed.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_downloader_stopped_mid_transfer_resumes_without_refetching_verified_chunks()
    {
        const int Chunks = 48;
        var served = new ConcurrentQueue<long>();
        await using var seeder = TransferNode.Start(TransferNode.Fast(o =>
        {
            o.UploadLimit = 160 * 1024;
            o.Served = (_, _, index) => served.Enqueue(index);
        }));
        var path = seeder.WriteFile("big.iso", Chunks * TransferNode.ChunkSize, seed: 3);
        var id = await seeder.ShareAsync(path);

        var identity = Core.Identity.NodeIdentity.Generate();
        var first = TransferNode.Start(identity: identity);
        var home = first.Home;
        await first.ConnectAsync(seeder);
        var handle = first.Transfer.StartDownload(id);
        await Wait.UntilAsync(() => first.Db.Downloads.VerifiedChunks(id.Text).Count >= 12, TimeSpan.FromSeconds(20), "some chunks to be durable");
        await first.StopAsync();
        Assert.Equal(DownloadState.Cancelled, (await handle.Completion).State);

        await Wait.UntilAsync(() => seeder.Transfer.OpenSessions().Count == 0, TimeSpan.FromSeconds(10), "the old session to close");
        using (var peek = SecureMeshDatabase.Open(home))
        {
            var persisted = peek.Downloads.VerifiedChunks(id.Text).ToHashSet();
            Assert.InRange(persisted.Count, 12, Chunks - 1);
            served.Clear();

            await using var second = TransferNode.Start(home: home, identity: identity);
            await second.ConnectAsync(seeder);
            var resumed = Assert.Single(second.Transfer.ResumeDownloads());
            Assert.Equal(id, resumed.ContentId);
            var result = await resumed.Completion.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(result.State == DownloadState.Released, result.Reason);
            Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(result.Path!));
            Assert.Equal(persisted.Count, resumed.ResumedChunks);
            var refetched = served.ToArray();
            Assert.Equal(Chunks - persisted.Count, refetched.Length);
            Assert.DoesNotContain(refetched, persisted.Contains);
            Assert.Equal(refetched.Length, resumed.Progress.ChunkRequests);
        }
        identity.Dispose();
    }

    [Fact]
    public async Task A_verified_chunk_damaged_on_disk_before_a_resume_is_caught_by_the_release_check_and_held()
    {
        const int Chunks = 32;
        await using var seeder = TransferNode.Start(TransferNode.Fast(o => o.UploadLimit = 160 * 1024));
        var path = seeder.WriteFile("disk.img", Chunks * TransferNode.ChunkSize, seed: 5);
        var id = await seeder.ShareAsync(path);

        using var identity = Core.Identity.NodeIdentity.Generate();
        var first = TransferNode.Start(identity: identity);
        var home = first.Home;
        await first.ConnectAsync(seeder);
        var handle = first.Transfer.StartDownload(id);
        await Wait.UntilAsync(() => first.Db.Downloads.VerifiedChunks(id.Text).Count >= 4, TimeSpan.FromSeconds(20), "some chunks to be durable");
        await first.StopAsync();
        Assert.Equal(DownloadState.Cancelled, (await handle.Completion).State);

        // Bit rot (or anything else) changes a chunk already recorded as verified: the resumed download does not
        // fetch it again, so only the release check reading the stored file back can notice.
        long damaged;
        using (var peek = SecureMeshDatabase.Open(home))
        {
            damaged = peek.Downloads.VerifiedChunks(id.Text).Min();
        }
        var part = Assert.Single(Directory.GetFiles(Path.Combine(home, "quarantine"), "*.part"));
        await using (var f = new FileStream(part, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = (damaged * TransferNode.ChunkSize) + 17;
            var b = f.ReadByte();
            f.Position--;
            f.WriteByte((byte)(b ^ 0x01));
        }

        await Wait.UntilAsync(() => seeder.Transfer.OpenSessions().Count == 0, TimeSpan.FromSeconds(10), "the old session to close");
        await using var second = TransferNode.Start(home: home, identity: identity);
        await second.ConnectAsync(seeder);
        var resumed = Assert.Single(second.Transfer.ResumeDownloads());
        var result = await resumed.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Held, result.State);
        Assert.Contains("does not match its content ID", result.Reason, StringComparison.Ordinal);
        Assert.False(Directory.Exists(second.Downloads) && Directory.EnumerateFileSystemEntries(second.Downloads).Any(), "nothing may be released");
    }

    [Fact]
    public Task A_seeder_that_connects_after_the_download_started_joins_it() => SecondSeederJoinsAsync(connectedBeforeHolding: false);

    [Fact]
    public Task A_connected_peer_that_held_nothing_when_asked_is_asked_again_and_joins_once_it_holds_the_content() =>
        SecondSeederJoinsAsync(connectedBeforeHolding: true);

    /// <summary>
    /// Only a slow seeder serves when the download starts (alone it would need about 16 s). Then a second seeder either
    /// connects, holding the content all along, or (<paramref name="connectedBeforeHolding"/>) was connected from the
    /// start but held nothing when asked (it was fetching the content itself, or its share was still being indexed) and
    /// now holds it. Either way the running download takes it on.
    /// </summary>
    private static async Task SecondSeederJoinsAsync(bool connectedBeforeHolding)
    {
        const int Chunks = 48;
        var lateServed = 0;
        await using var early = TransferNode.Start(TransferNode.Fast(o => o.UploadLimit = 48 * 1024));
        await using var late = TransferNode.Start(TransferNode.Fast(o => o.Served = (_, _, _) => Interlocked.Increment(ref lateServed)));
        await using var downloader = TransferNode.Start(TransferNode.Fast());
        var original = early.WriteFile("late.bin", Chunks * TransferNode.ChunkSize, seed: 9);
        var id = await early.ShareAsync(original);
        Task<SecureMesh.Core.Content.ContentId> LateSharesAsync() => late.ShareAsync(late.WriteFile("late.bin", Chunks * TransferNode.ChunkSize, seed: 9));
        if (!connectedBeforeHolding)
        {
            Assert.Equal(id, await LateSharesAsync());
        }

        await downloader.ConnectAsync(early);
        if (connectedBeforeHolding)
        {
            await downloader.ConnectAsync(late);
        }
        var handle = downloader.Transfer.StartDownload(id);
        await Wait.UntilAsync(() => handle.Progress.BytesDone > 0, TimeSpan.FromSeconds(20), "the first chunks from the early seeder");
        if (connectedBeforeHolding)
        {
            // Past a few join intervals (100 ms in tests): the second seeder has been asked and answered "none".
            await Task.Delay(TimeSpan.FromMilliseconds(300));
        }
        Assert.Equal(1, handle.Progress.Peers);

        if (connectedBeforeHolding)
        {
            Assert.Equal(id, await LateSharesAsync());
        }
        else
        {
            await downloader.ConnectAsync(late);
        }
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(result.Path!));
        Assert.True(Volatile.Read(ref lateServed) >= Chunks / 2, $"the second seeder served {lateServed} of {Chunks} chunks");
    }

    [Fact]
    public async Task A_download_started_before_any_peer_is_ready_waits_for_one_and_without_one_fails_after_the_wait()
    {
        // A `get` reaching a node that has just (re)started, before its connector has a session with a trusted peer: the
        // download waits for one instead of failing at once (which also marked an interrupted download failed, so that it
        // never resumed by itself; GracefulShutdownTests' and GetInterruptTests' `get` right after start failed so).
        await using var seeder = TransferNode.Start();
        await using var downloader = TransferNode.Start(TransferNode.Fast(o => o.PeerWait = TimeSpan.FromSeconds(60)));
        var original = seeder.WriteFile("early.bin", 8 * TransferNode.ChunkSize, seed: 11);
        var id = await seeder.ShareAsync(original);
        var handle = downloader.Transfer.StartDownload(id);
        // Longer than the old code took to fail (it failed as soon as its task ran).
        await Task.Delay(1000);
        if (handle.Completion.IsCompleted)
        {
            Assert.Fail($"the download ended before any peer connected: {(await handle.Completion).Reason}");
        }
        await downloader.ConnectAsync(seeder);
        var result = await handle.Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(result.State == DownloadState.Released, result.Reason);
        Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(result.Path!));

        // With nobody coming, it fails once the wait is over, with the reason.
        await using var alone = TransferNode.Start(TransferNode.Fast(o => o.PeerWait = TimeSpan.FromMilliseconds(200)));
        var failed = await alone.Transfer.StartDownload(id).Completion.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DownloadState.Failed, failed.State);
        Assert.Contains("no trusted peer is connected", failed.Reason, StringComparison.Ordinal);
    }
}
